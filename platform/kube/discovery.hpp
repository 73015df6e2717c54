#pragma once

#include <boost/asio/awaitable.hpp>
#include <vector>

#include "platform/kube/kube_client.hpp"
#include "platform/kube/resource.hpp"

namespace serin::kube {

/// The types of `wanted` the API server serves, in the same order, found by reading each
/// group-version's resource list once (GET /apis/<group>/<version>). A group-version the server
/// does not have (404), or cannot list, counts as not served.
boost::asio::awaitable<std::vector<ResourceType>> served_types(KubeClient& client,
                                                               std::vector<ResourceType> wanted);

}  // namespace serin::kube

#pragma once

#include <string>
#include <vector>

#include "analysis/release.hpp"
#include "controller/notify/notifier.hpp"
#include "controller/notify/payload.hpp"
#include "crds/api/alert_provider.hpp"
#include "crds/api/canary.hpp"
#include "platform/kube/object_store.hpp"

namespace serin::canary {

struct AlertOptions {
    std::string cluster_name;  ///< -cluster-name: a Cluster field on every alert when set
    /// The global notifier (-msteams-url, else -slack-url), for canaries without `alerts`.
    std::optional<notify::Destination> global;
};

/// Flagger's alert fields (flagger-spec §7): Cluster when set; with metadata, Target, Failed
/// checks threshold, Progress deadline and Traffic routing.
std::vector<notify::Field> alert_fields(const api::Canary& canary, bool with_metadata,
                                        const std::string& cluster_name);

/// Where an AlertProvider posts: its type, channel and username, and the address and token of
/// its Secret (`secret` may be null when it has no secretRef), and its proxy. Errors: kInvalid
/// naming the field (an unknown type, a Secret without `address`, a proxy URL that is not
/// http://), kNotFound for a missing Secret.
Result<notify::Destination> alert_destination(const api::AlertProvider& provider,
                                              const kube::Json* secret);

/// Sends a canary's alerts (flagger-spec §7): to each `alerts[]` entry whose severity matches,
/// through its AlertProvider (read from the informer cache, with its Secret); without entries,
/// to the global notifier. Posting happens in the background (notify::Notifier).
///
/// Thread safety: one io_context thread.
class AlertDispatcher {
public:
    AlertDispatcher(notify::Notifier& notifier, const kube::ObjectStore& store,
                    AlertOptions options)
        : notifier_(notifier), store_(store), options_(std::move(options)) {}

    /// Posts `alert` about `canary` with `extra` fields after Flagger's. Returns the problems
    /// found on the way (a missing provider, a bad Secret), one sentence each, for Warning
    /// Events; a post that fails later is reported to `on_failure`.
    std::vector<std::string> send(const api::Canary& canary, const analysis::Alert& alert,
                                  const std::vector<notify::Field>& extra,
                                  const notify::Notifier::FailureHandler& on_failure);

private:
    notify::Notifier& notifier_;
    const kube::ObjectStore& store_;
    AlertOptions options_;
};

}  // namespace serin::canary

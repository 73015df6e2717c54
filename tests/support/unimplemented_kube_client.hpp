#pragma once

#include "platform/core/result.hpp"
#include "platform/kube/kube_client.hpp"

namespace serin::testing {

/// A KubeClient whose every call fails with kInternal "not in this test": unit tests derive
/// from it and override only the calls the code under test makes.
class UnimplementedKubeClient : public kube::KubeClient {
public:
    using Json = nlohmann::json;

    boost::asio::awaitable<Result<Json>> get(kube::ResourceType, std::string,
                                             std::string) override {
        return none<Json>();
    }
    boost::asio::awaitable<Result<kube::ListPage>> list(kube::ResourceType, std::string,
                                                        kube::ListOptions) override {
        return none<kube::ListPage>();
    }
    boost::asio::awaitable<Result<Json>> create(kube::ResourceType, std::string, Json,
                                                kube::WriteOptions) override {
        return none<Json>();
    }
    boost::asio::awaitable<Result<Json>> update(kube::ResourceType, std::string, Json,
                                                kube::WriteOptions) override {
        return none<Json>();
    }
    boost::asio::awaitable<Result<Json>> patch(kube::ResourceType, std::string, std::string,
                                               kube::PatchType, std::string,
                                               kube::WriteOptions) override {
        return none<Json>();
    }
    boost::asio::awaitable<Result<void>> remove(kube::ResourceType, std::string, std::string,
                                                kube::DeleteOptions) override {
        return none<void>();
    }
    boost::asio::awaitable<Result<void>> watch(kube::ResourceType, std::string, kube::WatchOptions,
                                               kube::WatchHandler) override {
        return none<void>();
    }
    boost::asio::awaitable<Result<std::string>> get_raw(std::string) override {
        return none<std::string>();
    }

protected:
    template <class T>
    static boost::asio::awaitable<Result<T>> none() {
        co_return fail(ErrorKind::kInternal, "not in this test");
    }
};

}  // namespace serin::testing

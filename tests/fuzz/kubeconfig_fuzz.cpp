// A kubeconfig's text (serin's and kubectl-serin's users point at one).
#include <string>

#include "platform/kube/config.hpp"
#include "tests/fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(serin::fuzz::as_text(data, size));
    // A folder that does not exist: relative certificate paths in the input read nothing.
    auto config = serin::kube::parse_kubeconfig(text, "/nonexistent-serin-fuzz/kubeconfig");
    if (!config) {
        serin::fuzz::check(!config.error().message.empty(), "an error without a message");
    }
    return 0;
}

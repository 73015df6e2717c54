#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "loadtester/payload.hpp"
#include "platform/core/result.hpp"

/// What a payload to `/` asks the load tester to run (flagger-spec-providers.md §14.3).
namespace serin::loadtester {

enum class TaskType {
    kCmd,      ///< `sh -c <cmd>` in the background, de-duplicated while running
    kBash,     ///< `bash -c <cmd>`, answered when it ends
    kKubectl,  ///< `kubectl <cmd split on whitespace>`, answered when it ends
    kHelm,     ///< `helm <cmd split on whitespace>` (types helm and helmv3), answered when it ends
};

std::string_view to_string(TaskType type);

/// One task, ready to run.
struct Task {
    TaskType type = TaskType::kCmd;
    std::string type_name;  ///< as the payload gave it ("helmv3", ...)
    std::string command;    ///< metadata.cmd
    std::string canary;     ///< "<name>.<namespace>"
    std::vector<std::string> argv;  ///< what is executed
    bool log_output = false;        ///< metadata.logCmdOutput == "true"
    bool return_output = false;     ///< metadata.returnCmdOutput == "true"

    /// Whether the caller gets its answer only when the task ends.
    bool blocking() const { return type != TaskType::kCmd; }
};

/// The longest command accepted (a shell command line; Flagger's examples are under 200 bytes).
inline constexpr std::size_t kMaxCommandBytes = 16 * 1024;

/// The task a payload asks for. Errors (kBadRequest, with the text the 400 carries):
/// "metadata not found in payload", "cmd not found in metadata", "unknown task type <t>",
/// "task type <t> is not built into serin-loadtester" (concord, ngrinder), a command that is too
/// long or holds a NUL byte.
Result<Task> make_task(const Payload& payload);

/// `text` split on runs of whitespace, as Go's strings.Fields (no quoting).
std::vector<std::string> split_fields(std::string_view text);

/// The key under which a background command is de-duplicated: one canary's identical commands
/// never run twice at once; other canaries' run beside them.
std::string dedupe_key(std::string_view canary, std::string_view command);

}  // namespace serin::loadtester

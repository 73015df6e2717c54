#include "loadtester/task.hpp"

#include "platform/core/text.hpp"

namespace serin::loadtester {

namespace {

std::string metadata(const Payload& payload, const std::string& key) {
    const auto it = payload.metadata.find(key);
    return it == payload.metadata.end() ? std::string() : it->second;
}

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

}  // namespace

std::string_view to_string(TaskType type) {
    switch (type) {
        case TaskType::kCmd:
            return "cmd";
        case TaskType::kBash:
            return "bash";
        case TaskType::kKubectl:
            return "kubectl";
        case TaskType::kHelm:
            return "helm";
    }
    return "cmd";
}

std::vector<std::string> split_fields(std::string_view text) {
    std::vector<std::string> out;
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && is_space(text[i])) {
            ++i;
        }
        const std::size_t start = i;
        while (i < text.size() && !is_space(text[i])) {
            ++i;
        }
        if (i > start) {
            out.emplace_back(text.substr(start, i - start));
        }
    }
    return out;
}

std::string dedupe_key(std::string_view canary, std::string_view command) {
    // A NUL cannot occur in a canary key or a command (make_task refuses it), so the two parts
    // never run into each other ("a.b" + "c" differs from "a.bc").
    std::string key(canary);
    key.push_back('\0');
    key.append(command);
    return key;
}

Result<Task> make_task(const Payload& payload) {
    if (payload.metadata.empty()) {
        return fail(ErrorKind::kBadRequest, "metadata not found in payload");
    }
    Task task;
    task.canary = payload.canary();
    task.type_name = metadata(payload, "type");
    if (task.type_name.empty()) {
        task.type_name = "cmd";
    }
    const std::string& t = task.type_name;
    if (t == "cmd") {
        task.type = TaskType::kCmd;
    } else if (t == "bash") {
        task.type = TaskType::kBash;
    } else if (t == "kubectl") {
        task.type = TaskType::kKubectl;
    } else if (t == "helm" || t == "helmv3") {
        task.type = TaskType::kHelm;
    } else if (t == "concord" || t == "ngrinder") {
        return fail(ErrorKind::kBadRequest,
                    "task type " + t + " is not built into serin-loadtester (see docs/loadtester.md)");
    } else {
        return fail(ErrorKind::kBadRequest, "unknown task type " + text::clip(t, 64));
    }
    task.command = metadata(payload, "cmd");
    if (task.command.empty()) {
        return fail(ErrorKind::kBadRequest, "cmd not found in metadata");
    }
    if (task.command.size() > kMaxCommandBytes) {
        return fail(ErrorKind::kBadRequest,
                    "cmd longer than " + std::to_string(kMaxCommandBytes) + " bytes");
    }
    if (task.command.find('\0') != std::string::npos || task.canary.find('\0') != std::string::npos) {
        return fail(ErrorKind::kBadRequest, "cmd or canary holds a NUL byte");
    }
    task.log_output = metadata(payload, "logCmdOutput") == "true";
    task.return_output = metadata(payload, "returnCmdOutput") == "true";
    switch (task.type) {
        case TaskType::kCmd:
            task.argv = {"sh", "-c", task.command};
            break;
        case TaskType::kBash:
            task.argv = {"bash", "-c", task.command};
            break;
        case TaskType::kKubectl:
        case TaskType::kHelm:
            task.argv = split_fields(task.command);
            task.argv.insert(task.argv.begin(),
                             task.type == TaskType::kKubectl ? "kubectl" : "helm");
            break;
    }
    return task;
}

}  // namespace serin::loadtester

#pragma once
// What a task's file path may be: relative, inside the output root, printable. The same
// check guards the priority-assigner at the door and the filesystem target at delivery.
#include <optional>
#include <string>
#include <string_view>

namespace agentline::events {

// nullopt when `path` is safe, else the reason it is not. Rejects empty and absolute paths,
// drive letters, backslashes, "." and ".." segments, empty segments, segments over 255 bytes
// (what filesystems refuse), control characters, and paths over 1024 bytes.
std::optional<std::string> unsafe_path_reason(std::string_view path);
// A job or task id names folders (delivered/<job_id>/...) and files: "." and ".." cannot be
// one (the schemas' pattern allows every other id). nullopt when `id` is safe.
std::optional<std::string> unsafe_id_reason(std::string_view id);

}  // namespace agentline::events

#pragma once
// Ids derived from other ids (an event's from its task's, a plan's task from its job), always
// within the schemas' 128 characters: a base too long for its prefix keeps its start and gets a
// hash of the whole, so distinct bases stay distinct.
#include <string>
#include <string_view>

namespace agentline::events {

inline constexpr std::size_t kMaxIdLength = 128;

std::string derived_id(std::string_view prefix, std::string_view base, std::string_view suffix = "");

}  // namespace agentline::events

#include "partition_table.h"

namespace agentline::kafka::detail {

void PartitionTable::assign(const std::vector<PartitionId>& ids,
                            const std::function<int(const std::string&)>& rank_of) {
  for (const auto& id : ids) {
    auto state = std::make_shared<PartitionState>();
    state->rank = rank_of(id.first);
    states_[id] = std::move(state);
  }
}

bool PartitionTable::settled(const std::set<PartitionId>& ids, const std::map<PartitionId, std::size_t>& parked) const {
  for (const auto& id : ids) {
    auto it = states_.find(id);
    if (it == states_.end()) continue;
    auto p = parked.find(id);
    if (it->second->tracker.in_flight() > (p == parked.end() ? 0 : p->second)) return false;
  }
  return true;
}

std::vector<std::pair<PartitionId, std::size_t>> PartitionTable::revoke(const std::set<PartitionId>& ids) {
  std::vector<std::pair<PartitionId, std::size_t>> running;
  for (const auto& id : ids) {
    auto it = states_.find(id);
    if (it == states_.end()) continue;
    if (const auto n = it->second->tracker.in_flight(); n > 0) running.emplace_back(id, n);
    it->second->revoked = true;
    it->second->held.clear();
    states_.erase(it);
  }
  return running;
}

void PartitionTable::revoke_all() {
  for (auto& [id, state] : states_) state->revoked = true;
}

std::shared_ptr<PartitionState> PartitionTable::find(const PartitionId& id) const {
  auto it = states_.find(id);
  return it == states_.end() ? nullptr : it->second;
}

std::vector<PartitionId> PartitionTable::ids() const {
  std::vector<PartitionId> out;
  for (const auto& [id, state] : states_) out.push_back(id);
  return out;
}

}  // namespace agentline::kafka::detail

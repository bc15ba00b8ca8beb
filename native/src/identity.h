// Process identity for co-located liveness checks and stale shm cleanup.
//
// A pid alone is not an identity (pids are reused), so a process is named by (pid, start time in clock ticks
// since boot, from /proc/<pid>/stat field 22), and a host by its boot id. Two processes are co-located when
// their boot ids match; then one can tell from /proc whether the other is still alive.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace squall {

struct ProcessIdentity {
  uint32_t pid = 0;
  uint64_t startTicks = 0;
  uint8_t bootId[16] = {0};
};

// This process (computed once).
const ProcessIdentity& selfIdentity();

enum class Liveness { Alive, Dead, Unknown };

// Alive iff /proc/<pid>/stat exists, its start time equals startTicks and it is not a zombie.
Liveness processLiveness(uint32_t pid, uint64_t startTicks);

bool sameHost(const ProcessIdentity& a, const ProcessIdentity& b);

// The shm endpoint name for this process: "<prefix>-<pid>-<startTicks>-<n>".
std::string shmEndpointName(const std::string& prefix, uint32_t n);

// Removes /dev/shm/<prefix>-<pid>-<start>-* files whose process is gone (pid absent, reused or zombie).
// Files of live processes, and files not matching the pattern, are left alone. Returns removed names.
std::vector<std::string> cleanupStaleShm(const std::string& prefix, const std::string& dir = "/dev/shm");

}  // namespace squall

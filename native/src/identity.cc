#include "identity.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace squall {

namespace {

// Parses /proc/<pid>/stat: returns false if unreadable. comm (field 2) may contain spaces and parentheses, so
// fields are counted from the last ')'.
bool readStat(uint32_t pid, char* state, uint64_t* startTicks) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%u/stat", pid);
  FILE* f = fopen(path, "re");
  if (!f) return false;
  char buf[1024];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char* close = strrchr(buf, ')');
  if (!close) return false;
  // After ") " come fields 3.. : state(3) ppid(4) ... starttime(22).
  char* p = close + 2;
  *state = *p;
  int field = 3;
  while (*p && field < 22) {
    if (*p == ' ') field++;
    p++;
  }
  if (field != 22) return false;
  *startTicks = strtoull(p, nullptr, 10);
  return true;
}

void readBootId(uint8_t out[16]) {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string s;
  std::getline(in, s);
  size_t k = 0;
  for (size_t i = 0; i + 1 < s.size() && k < 16; i++) {
    if (s[i] == '-') continue;
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int hi = hex(s[i]), lo = hex(s[i + 1]);
    if (hi < 0 || lo < 0) break;
    out[k++] = static_cast<uint8_t>(hi * 16 + lo);
    i++;
  }
}

ProcessIdentity computeSelf() {
  ProcessIdentity id;
  id.pid = static_cast<uint32_t>(getpid());
  char state;
  readStat(id.pid, &state, &id.startTicks);
  readBootId(id.bootId);
  return id;
}

}  // namespace

const ProcessIdentity& selfIdentity() {
  static const ProcessIdentity self = computeSelf();
  return self;
}

Liveness processLiveness(uint32_t pid, uint64_t startTicks) {
  char state = 0;
  uint64_t start = 0;
  if (!readStat(pid, &state, &start)) return Liveness::Dead;
  if (start != startTicks) return Liveness::Dead;  // pid reused by another process
  if (state == 'Z' || state == 'X' || state == 'x') return Liveness::Dead;
  return Liveness::Alive;
}

bool sameHost(const ProcessIdentity& a, const ProcessIdentity& b) {
  return memcmp(a.bootId, b.bootId, 16) == 0;
}

std::string shmEndpointName(const std::string& prefix, uint32_t n) {
  const ProcessIdentity& self = selfIdentity();
  std::ostringstream s;
  s << prefix << '-' << self.pid << '-' << self.startTicks << '-' << n;
  return s.str();
}

std::vector<std::string> cleanupStaleShm(const std::string& prefix, const std::string& dir) {
  std::vector<std::string> removed;
  DIR* d = opendir(dir.c_str());
  if (!d) return removed;
  const std::string head = prefix + "-";
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.compare(0, head.size(), head) != 0) continue;
    // <pid>-<start>-<rest>
    const char* p = name.c_str() + head.size();
    char* end = nullptr;
    unsigned long pid = strtoul(p, &end, 10);
    if (end == p || *end != '-') continue;
    p = end + 1;
    unsigned long long start = strtoull(p, &end, 10);
    if (end == p || *end != '-') continue;
    if (pid == selfIdentity().pid && start == selfIdentity().startTicks) continue;
    if (processLiveness(static_cast<uint32_t>(pid), start) != Liveness::Dead) continue;
    std::string path = dir + "/" + name;
    if (unlink(path.c_str()) == 0) removed.push_back(name);
  }
  closedir(d);
  return removed;
}

}  // namespace squall

#include "shm_lock.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace squall {

namespace {

// Where struct smr_region keeps what we need, per SMR_VERSION (its first byte). Checked against endpoint
// files this addon created: version 4 is libfabric 1.17 (Debian bookworm's libfabric1 1.17.0).
struct Layout {
  uint8_t version;
  size_t pidOffset;        // int pid
  size_t lockOffset;       // pthread_spinlock_t lock
  size_t totalSizeOffset;  // size_t total_size (equals the file's size)
};
constexpr Layout kLayouts[] = {{4, 4, 24, 40}};

// The value of a free pthread spinlock on this platform (glibc on x86-64 counts down from 1, elsewhere 0).
int freeValue() {
  static const int v = [] {
    pthread_spinlock_t l;
    pthread_spin_init(&l, PTHREAD_PROCESS_SHARED);
    static_assert(sizeof(int) == sizeof l, "pthread_spinlock_t is an int");
    const int out = l;
    pthread_spin_destroy(&l);
    return out;
  }();
  return v;
}

}  // namespace

std::string shmFileOfAddress(const std::string& address) {
  std::string s = address.substr(0, address.find('\0'));
  const size_t scheme = s.find("://");
  if (scheme != std::string::npos) s = s.substr(scheme + 3);
  if (s.empty() || s.find('/') != std::string::npos || s == "." || s == "..") return "";
  return s;
}

std::unique_ptr<ShmLock> ShmLock::open(const std::string& file, uint32_t ownerPid, std::string* why) {
  if (file.empty()) {
    *why = "no shm endpoint file";
    return nullptr;
  }
  const std::string path = "/dev/shm/" + file;
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    *why = "cannot open " + path + ": " + strerror(errno);
    return nullptr;
  }
  struct stat st {};
  const size_t len = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  void* map = MAP_FAILED;
  if (fstat(fd, &st) == 0 && static_cast<size_t>(st.st_size) >= len) {
    map = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  }
  ::close(fd);
  if (map == MAP_FAILED) {
    *why = "cannot map " + path;
    return nullptr;
  }
  const uint8_t* base = static_cast<const uint8_t*>(map);
  for (const Layout& l : kLayouts) {
    if (base[0] != l.version) continue;
    int pid;
    uint64_t total;
    memcpy(&pid, base + l.pidOffset, sizeof pid);
    memcpy(&total, base + l.totalSizeOffset, sizeof total);
    if (static_cast<uint32_t>(pid) != ownerPid || total != static_cast<uint64_t>(st.st_size)) continue;
    return std::unique_ptr<ShmLock>(new ShmLock(map, len, static_cast<uint8_t*>(map) + l.lockOffset));
  }
  *why = path + " has an shm layout this addon does not know (version " + std::to_string(base[0]) + ")";
  munmap(map, len);
  return nullptr;
}

ShmLock::~ShmLock() { munmap(map_, len_); }

bool ShmLock::held() const { return __atomic_load_n(static_cast<const int*>(word_), __ATOMIC_ACQUIRE) != freeValue(); }

void ShmLock::release() { pthread_spin_unlock(static_cast<pthread_spinlock_t*>(word_)); }

void ShmLock::acquire() { pthread_spin_lock(static_cast<pthread_spinlock_t*>(word_)); }

}  // namespace squall

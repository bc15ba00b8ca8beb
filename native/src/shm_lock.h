// The lock inside an shm endpoint file, seen from outside the provider.
//
// libfabric's shm provider keeps, near the start of every endpoint's /dev/shm file, a pthread spinlock that
// guards the endpoint's queues: the owner holds it while it progresses (every fi_cq_read), and a writer
// holds the *target's* lock while it posts (every fi_write). A process killed inside either section leaves
// the lock held for good, and from then on every writer to that endpoint, or its owner, spins inside the
// provider forever (with the caller's own lock held). ShmLock maps such a file so that a watchdog can see
// the lock and release it once its holder is known to be dead.
//
// The lock's place is not part of libfabric's API, so only layouts checked against a real endpoint file are
// known (see kLayouts in shm_lock.cc); any other file is refused, and recovery is then simply unavailable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace squall {

class ShmLock {
 public:
  // Maps /dev/shm/<file> when it is an shm endpoint file of a known layout owned by process `ownerPid`;
  // otherwise returns null and says why in *why.
  static std::unique_ptr<ShmLock> open(const std::string& file, uint32_t ownerPid, std::string* why);
  ~ShmLock();
  ShmLock(const ShmLock&) = delete;
  ShmLock& operator=(const ShmLock&) = delete;

  bool held() const;
  // pthread_spin_unlock: only for a lock whose holder is dead.
  void release();
  // pthread_spin_lock: tests use it to play a process that dies inside the provider.
  void acquire();

 private:
  ShmLock(void* map, size_t len, void* word) : map_(map), len_(len), word_(word) {}
  void* map_;
  size_t len_;
  void* word_;
};

// The endpoint file an shm address names ("fi_ns://<file>" or "fi_shm://<file>", maybe NUL-padded), or ""
// when it names none (a slash in it, or empty).
std::string shmFileOfAddress(const std::string& address);

}  // namespace squall

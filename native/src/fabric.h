// The native data plane: one libfabric RDM endpoint per Fabric, registered memory regions, one-sided writes to
// peers, and a progress thread that pumps the provider and watches local memory.
//
// Invariants this file keeps:
// - Writes from this Fabric to one peer are posted in the order they were requested (a per-peer FIFO holds
//   writes that could not be posted yet, and nothing overtakes it). The providers used apply one initiator's
//   writes to one target in post order (shm: the copy is done inside fi_write; tcp/net: one ordered stream;
//   verbs: one RC queue pair), so a doorbell written after its data is never seen before the data.
// - Visibility is decided by memory contents (seq guards written by the protocol layer), never by completions:
//   a local completion only frees the operation and reports errors.
// - Every wait has a deadline: a write not completed (or still queued) after writeTimeoutMs marks its peer dead.
// - Registered memory is never unmapped or reused while the Fabric lives: retiring a region closes its MR and
//   drops its pages, but keeps the address range reserved, so a late write from a peer that still holds the
//   old key lands in harmless memory instead of in something else.
// - All libfabric calls on one Fabric happen under one mutex (the endpoint is opened FI_THREAD_DOMAIN).
#pragma once

#include <rdma/fabric.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "identity.h"
#include "shm_lock.h"

namespace squall {

// A usage error (bad arguments, unknown ids): becomes a JS TypeError/RangeError.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// A libfabric or system failure: becomes a JS Error with the provider's message.
struct FabricError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct FabricOptions {
  std::string provider;     // "shm" | "tcp" | "net" | "verbs"
  std::string host;         // address to bind for tcp/net/verbs (e.g. "127.0.0.1")
  std::string shmPrefix;    // shm endpoint names start with "<shmPrefix>-<pid>-<start>-"
  uint32_t writeTimeoutMs = 5000;
  uint32_t pollSpinUs = 50;
  uint32_t pollSleepMaxUs = 1000;
  uint32_t livenessCheckMs = 100;
  uint32_t shmLockRecoveryMs = 250;  // shm: a provider call stuck this long looks for locks dead processes hold
  uint32_t maxOutstandingWrites = 1024;
  uint32_t maxQueuedWrites = 65536;
  uint64_t blockSizeBytes = 1 << 20;
  uint64_t maxRegionBytes = 1ull << 30;
};

struct PeerEvent {
  uint32_t peer;
  std::string reason;
  uint32_t generation;  // which addPeer() of this id it concerns (a later re-add is another generation)
};

struct FabricStats {
  uint64_t writesPosted = 0, writesCompleted = 0, writesQueued = 0, writesCoalesced = 0, writesDropped = 0;
  uint64_t bytesPosted = 0, eagain = 0, cqErrors = 0, watchChanges = 0, notifications = 0;
  uint64_t progressLoops = 0, sleeps = 0, wakeups = 0;
  uint64_t outstanding = 0, queued = 0, regions = 0, reservedBytes = 0, peers = 0;
  bool fdWait = false;  // the progress thread blocks on the provider's CQ fd when idle
  uint64_t shmLocksReleased = 0;  // shm locks left held by dead processes that the watchdog released
  bool shmLockRecovery = false;   // shm: this endpoint's own lock is known (its layout checked)
};

// Write status returned to JS.
enum WriteStatus : int { kPosted = 0, kQueued = 1, kPeerDead = 2 };

class Writer;
class Reader;

class Fabric {
 public:
  // notify() is called from the progress thread (never under the Fabric's lock) when events are waiting.
  Fabric(const FabricOptions& options, std::function<void()> notify);
  ~Fabric();
  Fabric(const Fabric&) = delete;
  Fabric& operator=(const Fabric&) = delete;

  void close();
  bool closed() const { return closed_.load(); }

  const std::string& providerName() const { return providerName_; }
  const std::string& shmName() const { return shmName_; }
  std::vector<uint8_t> endpointBlob();

  // Allocates, registers and returns `sizeBytes` bytes under the group-agreed logical id `id`.
  void* registerRegion(uint32_t id, uint64_t sizeBytes);
  std::vector<uint8_t> regionBlob(uint32_t id);
  // Closes the MR once no local write reads from it (or at the write deadline), drops its pages, keeps the
  // address range reserved. Watches on it are removed.
  void retireRegion(uint32_t id);

  // Returns the peer's generation: 1 for the first addPeer of this id, +1 for each later one.
  uint32_t addPeer(uint32_t peer, const uint8_t* blob, size_t len);
  void addRemoteRegion(uint32_t peer, const uint8_t* blob, size_t len);
  void removePeer(uint32_t peer);

  // One-sided write of local [localOffset, +len) into the peer's region at remoteOffset, in blocks of at most
  // blockSizeBytes. Returns the status of the last block.
  int write(uint32_t peer, uint32_t remoteRegion, uint64_t remoteOffset, uint32_t localRegion,
            uint64_t localOffset, uint64_t len);
  // The same range of local region `region` written at the same offset into every listed peer's region `region`
  // (the replicated-row pattern). Returns how many peers were dead (skipped).
  int put(uint32_t region, uint64_t offset, uint64_t len, const uint32_t* peers, size_t count);

  // Watches the 8-byte word at region+offset; returns a watch id. The watch is reported once soon after
  // this call, then whenever the word changes.
  uint32_t watch(uint32_t region, uint64_t offset);
  void unwatch(uint32_t watchId);

  // Called on the JS thread after notify(): hands over and clears pending events.
  void takeEvents(std::vector<uint32_t>* changed, std::vector<PeerEvent>* peers);
  FabricStats stats();
  size_t queuedTo(uint32_t peer);
  // Tests only: takes the shm lock of this endpoint (peer < 0) or of the peer's endpoint and keeps it, as a
  // process killed inside the provider would.
  void holdShmLockForTest(int64_t peer);

  // Marks the notification delivered, so the next event notifies again.
  std::atomic<bool> notifyPending{false};

 private:
  struct Region {
    uint32_t id = 0;
    uint8_t* base = nullptr;
    uint64_t size = 0;     // as requested
    uint64_t mapped = 0;   // page-rounded
    fid_mr* mr = nullptr;
    void* desc = nullptr;
    uint64_t key = 0;
    uint64_t remoteBase = 0;  // what peers add offsets to
    uint32_t inflight = 0;    // queued + posted writes reading from this region
    bool retiring = false;
    uint64_t retireAtNs = 0;
  };
  struct RemoteRegion {
    uint64_t base = 0, key = 0, size = 0;
  };
  struct PendingWrite {
    uint32_t localRegion;
    uint64_t localOffset;
    uint64_t remoteAddr;
    uint64_t key;
    uint64_t len;
    uint64_t queuedAtNs;
  };
  // A small shared page per endpoint: co-located peers bump `seq` (and FUTEX_WAKE it) after writing to a
  // sleeping endpoint, so an idle member can sleep long yet wake at once. Writes over shm land without any
  // event the provider could give us, and rxm's CQ fd is not usable as a wake-up (it stays readable), so
  // without this a sleeper would notice only when its sleep ends.
  struct Doorbell {
    std::atomic<uint32_t> seq;
    std::atomic<uint32_t> sleeping;
  };
  struct Peer {
    ~Peer();
    Doorbell* bell = nullptr;  // the peer's doorbell, mapped (co-located shm peers)
    uint32_t id = 0;
    uint32_t generation = 0;
    fi_addr_t addr = FI_ADDR_UNSPEC;
    ProcessIdentity identity;
    bool colocated = false;
    bool sameProcess = false;
    std::string name;  // its endpoint name
    bool dead = false;
    bool removed = false;
    std::unordered_map<uint32_t, RemoteRegion> regions;
    std::deque<PendingWrite> queue;
    uint32_t outstanding = 0;
  };
  struct Op {
    fi_context2 ctx;  // must be first: libfabric hands it back as op_context
    std::shared_ptr<Peer> peer;
    uint32_t region = 0;
    uint64_t len = 0;
    uint64_t postedAtNs = 0;
    bool inUse = false;
  };
  struct Watch {
    bool active = false;
    bool reported = false;
    uint32_t region = 0;
    const uint64_t* word = nullptr;
    uint64_t last = 0;
  };

  void openEndpoint();
  void closeLocked();
  Region& regionLocked(uint32_t id);
  std::shared_ptr<Peer> peerLocked(uint32_t id);
  int enqueueLocked(const std::shared_ptr<Peer>& peer, uint32_t localRegion, uint64_t localOffset,
                    uint64_t remoteAddr, uint64_t key, uint64_t len);
  // Tries to post; returns 0 posted, -FI_EAGAIN not now (nothing consumed), other <0 = failure.
  int postLocked(const std::shared_ptr<Peer>& peer, const PendingWrite& w);
  bool drainQueuesLocked();
  int drainCqLocked();
  bool scanWatchesLocked();
  void checkDeadlinesLocked(uint64_t nowNs);
  void finalizeRegionsLocked(uint64_t nowNs);
  void markDeadLocked(Peer& peer, const std::string& reason);
  void dropQueueLocked(Peer& peer);
  void checkLiveness();
  void progressLoop();
  void watchdogLoop();
  void recoverShmLocks(uint64_t stuckSince);
  void waitIdle(uint64_t sleepUs);
  void wake();
  void releaseRegionMemory(Region& r);
  void writeBlobHeader(Writer& w, uint32_t magic) const;
  void readBlobHeader(Reader& rd, uint32_t magic, const char* what) const;
  void kickLocked(Peer& peer);
  void openDoorbell(const std::string& localName);
  uint32_t watchLocked(uint32_t region, uint64_t offset, bool& needsWake);

  FabricOptions options_;
  std::function<void()> notify_;
  std::string providerName_;
  std::string shmName_;
  std::string epName_;

  std::mutex mu_;
  fi_info* info_ = nullptr;
  fid_fabric* fabric_ = nullptr;
  fid_domain* domain_ = nullptr;
  fid_ep* ep_ = nullptr;
  fid_cq* cq_ = nullptr;
  fid_av* av_ = nullptr;
  int cqFd_ = -1;       // wait fd of the CQ when the provider offers one (tcp, net)
  int wakeFd_ = -1;     // eventfd: JS thread wakes a sleeping progress thread (when there is no doorbell)
  Doorbell* bell_ = nullptr;
  std::string bellName_;  // file name under /dev/shm
  bool fdWaitOffered_ = false;  // set at open
  bool fdWaitUsable_ = false;   // progress thread only after open
  uint64_t mrMode_ = 0;
  bool senderProgress_ = true;
  uint64_t maxMsgBytes_ = 0;

  std::map<uint32_t, Region> regions_;
  std::vector<Region> retired_;
  std::unordered_map<uint32_t, std::shared_ptr<Peer>> peers_;
  std::unordered_map<uint32_t, uint32_t> peerGenerations_;  // survives removePeer
  std::vector<Op> ops_;
  std::vector<uint32_t> freeOps_;
  std::vector<Watch> watches_;
  std::vector<uint32_t> freeWatches_;
  size_t queuedTotal_ = 0;

  std::vector<uint32_t> changed_;
  std::vector<PeerEvent> peerEvents_;
  FabricStats stats_;

  std::thread thread_;
  std::atomic<bool> stop_{false};

  // The shm watchdog (see shm_lock.h). It never takes mu_: the thread it rescues may hold it.
  struct ShmPeer {
    uint32_t id;
    ProcessIdentity identity;
    std::shared_ptr<ShmLock> lock;  // null when its file could not be checked
  };
  std::atomic<uint64_t> providerCallSince_{0};  // when the provider call in progress began (0: none)
  std::atomic<uint64_t> shmLocksReleased_{0};
  std::shared_ptr<ShmLock> ownLock_;
  std::mutex shmMu_;                 // guards shmPeers_; never held across a provider call
  std::vector<ShmPeer> shmPeers_;    // co-located shm peers added, dead ones too (a dead writer may hold our lock)
  std::thread watchdog_;
  std::mutex watchdogMu_;
  std::condition_variable watchdogCv_;
  bool watchdogStop_ = false;  // under watchdogMu_
  std::atomic<bool> sleeping_{false};
  std::atomic<uint64_t> sleeps_{0};
  std::atomic<bool> fdWaitDisabled_{false};
  bool lastWaitWokeOnCqFd_ = false;  // progress thread only
  uint32_t spuriousCqWakeups_ = 0;   // progress thread only
  std::atomic<bool> closed_{false};
  uint64_t lastDeadlineCheckNs_ = 0;
  uint64_t lastLivenessCheckNs_ = 0;
};

}  // namespace squall

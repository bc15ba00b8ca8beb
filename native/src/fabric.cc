#include "fabric.h"

#include <poll.h>
#include <pthread.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>

namespace squall {

namespace {

constexpr uint32_t kEndpointMagic = 0x45465153;  // "SQFE"
constexpr uint32_t kRegionMagic = 0x52465153;    // "SQFR"
constexpr uint16_t kBlobVersion = 2;
constexpr size_t kDoorbellBytes = 4096;
constexpr int kCqBatch = 64;
constexpr uint64_t kDeadlineCheckNs = 10'000'000;  // scan for overdue writes every 10 ms
constexpr uint64_t kFdIdleWaitMaxUs = 50'000;      // tcp/net: the CQ fd wakes us; re-check deadlines anyway

uint64_t nowNs() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<uint64_t>(t.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(t.tv_nsec);
}

struct ProviderChoice {
  uint16_t code;
  const char* libfabricName;
  bool usesHost;
  bool fdWait;  // remote writes land only while we progress, and the CQ fd wakes us when data arrives
};

ProviderChoice chooseProvider(const std::string& name) {
  // RDM endpoints everywhere so one code path serves all: shm is RDM-only; tcp and verbs get reliable
  // datagram semantics from the rxm utility provider over their connected endpoints; net has native RDM.
  if (name == "shm") return {1, "shm", false, false};
  if (name == "tcp") return {2, "tcp;ofi_rxm", true, true};
  if (name == "net") return {3, "net", true, true};
  if (name == "verbs") return {4, "verbs;ofi_rxm", true, false};
  throw UsageError("unknown fabric provider '" + name + "' (expected shm, tcp, net or verbs)");
}

std::string fiError(const char* what, int rc) {
  return std::string(what) + " failed: " + fi_strerror(rc < 0 ? -rc : rc) + " (" + std::to_string(rc) + ")";
}

void check(int rc, const char* what) {
  if (rc) throw FabricError(fiError(what, rc));
}

}  // namespace

class Writer {
 public:
  template <typename T>
  void put(T v) {
    const uint8_t* p = reinterpret_cast<const uint8_t*>(&v);
    buf.insert(buf.end(), p, p + sizeof v);
  }
  void bytes(const void* p, size_t n) {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    buf.insert(buf.end(), b, b + n);
  }
  std::vector<uint8_t> buf;
};

class Reader {
 public:
  Reader(const uint8_t* p, size_t n, const char* what) : p_(p), n_(n), what_(what) {}
  template <typename T>
  T get() {
    T v;
    need(sizeof v);
    memcpy(&v, p_ + at_, sizeof v);
    at_ += sizeof v;
    return v;
  }
  void bytes(void* out, size_t n) {
    need(n);
    memcpy(out, p_ + at_, n);
    at_ += n;
  }
  void need(size_t k) {
    if (at_ + k > n_) throw UsageError(std::string("truncated ") + what_ + " blob");
  }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t at_ = 0;
  const char* what_;
};

namespace {

void futexWake(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, 1, nullptr, nullptr, 0);
}

void futexWait(std::atomic<uint32_t>* word, uint32_t expected, uint64_t timeoutUs) {
  timespec ts{static_cast<time_t>(timeoutUs / 1'000'000), static_cast<long>((timeoutUs % 1'000'000) * 1000)};
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, &ts, nullptr, 0);
}

// Marks a provider call in progress for the shm watchdog (calls run under mu_, so they never nest).
class ProviderCall {
 public:
  explicit ProviderCall(std::atomic<uint64_t>& since) : since_(since) { since_.store(nowNs(), std::memory_order_relaxed); }
  ~ProviderCall() { since_.store(0, std::memory_order_relaxed); }
  ProviderCall(const ProviderCall&) = delete;
  ProviderCall& operator=(const ProviderCall&) = delete;

 private:
  std::atomic<uint64_t>& since_;
};

// How the watchdog tells a dead holder's lock from a live one's: a live process holds an shm lock while it
// posts one write (at most a blockSizeBytes copy) or progresses, well under a millisecond, so a lock seen
// held at every one of these samples, 200 ms in all, is not held by a live process.
constexpr int kLockSamples = 40;
constexpr int kLockSampleMs = 5;

inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Fabrics still open when the process exits (process.exit() does not run N-API cleanup hooks) are closed
// from atexit, so the shm provider unlinks its files. Registered on first use, after libfabric was loaded,
// so it runs before libfabric's own destructors.
std::mutex& liveMutex() {
  static std::mutex* m = new std::mutex;
  return *m;
}
std::vector<Fabric*>& liveFabrics() {
  static std::vector<Fabric*>* v = new std::vector<Fabric*>;
  return *v;
}
void closeLiveFabricsAtExit() {
  std::vector<Fabric*> open;
  {
    std::lock_guard<std::mutex> lock(liveMutex());
    open = liveFabrics();
  }
  for (Fabric* f : open) f->close();
}
// Endpoint names of this process's open fabrics. shm maps a peer in the same process through that peer's
// own mapping, so writing to it after it closed would touch unmapped memory: such writes are refused.
std::set<std::string>& liveNames() {
  static std::set<std::string>* s = new std::set<std::string>;
  return *s;
}
void trackLive(Fabric* f, const std::string& name) {
  static std::once_flag once;
  std::call_once(once, [] { atexit(closeLiveFabricsAtExit); });
  std::lock_guard<std::mutex> lock(liveMutex());
  liveFabrics().push_back(f);
  liveNames().insert(name);
}
void untrackLive(Fabric* f, const std::string& name) {
  std::lock_guard<std::mutex> lock(liveMutex());
  auto& v = liveFabrics();
  v.erase(std::remove(v.begin(), v.end(), f), v.end());
  liveNames().erase(name);
}
bool nameLive(const std::string& name) {
  std::lock_guard<std::mutex> lock(liveMutex());
  return liveNames().count(name) > 0;
}

uint64_t pageRound(uint64_t n) {
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  return (n + page - 1) / page * page;
}

}  // namespace

Fabric::Fabric(const FabricOptions& options, std::function<void()> notify)
    : options_(options), notify_(std::move(notify)) {
  if (options_.maxOutstandingWrites == 0) throw UsageError("maxOutstandingWrites must be > 0");
  if (options_.blockSizeBytes == 0) throw UsageError("blockSizeBytes must be > 0");
  try {
    openEndpoint();
  } catch (...) {
    closeLocked();
    throw;
  }
  ops_.resize(options_.maxOutstandingWrites);
  freeOps_.reserve(ops_.size());
  for (uint32_t i = 0; i < ops_.size(); i++) freeOps_.push_back(static_cast<uint32_t>(ops_.size() - 1 - i));
  {
    char name[512];
    size_t len = sizeof name;
    if (fi_getname(&ep_->fid, name, &len) == 0) epName_.assign(name, len);
  }
  if (options_.provider == "shm") {
    std::string why;
    ownLock_ = ShmLock::open(shmFileOfAddress(epName_), selfIdentity().pid, &why);
    stats_.shmLockRecovery = ownLock_ != nullptr && options_.shmLockRecoveryMs > 0;
    if (options_.shmLockRecoveryMs > 0) watchdog_ = std::thread([this] { watchdogLoop(); });
  }
  thread_ = std::thread([this] { progressLoop(); });
  trackLive(this, epName_);
}

Fabric::~Fabric() { close(); }

void Fabric::openEndpoint() {
  const ProviderChoice choice = chooseProvider(options_.provider);
  fi_info* hints = fi_allocinfo();
  if (!hints) throw FabricError("fi_allocinfo failed");
  hints->ep_attr->type = FI_EP_RDM;
  hints->caps = FI_RMA | FI_WRITE | FI_REMOTE_WRITE;
  hints->mode = FI_CONTEXT | FI_CONTEXT2;
  hints->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY | FI_MR_ENDPOINT;
  hints->domain_attr->threading = FI_THREAD_DOMAIN;
  hints->fabric_attr->prov_name = strdup(choice.libfabricName);

  // Files under /dev/shm (shm's endpoint file, every provider's doorbell) are named per process incarnation;
  // those of dead incarnations are removed first.
  static std::atomic<uint32_t> counter{0};
  const std::string localName = shmEndpointName(options_.shmPrefix, counter.fetch_add(1));
  cleanupStaleShm(options_.shmPrefix);
  std::string node;
  if (choice.usesHost) {
    node = options_.host;
  } else {
    shmName_ = localName;  // shm names its endpoint file after the node
    node = shmName_;
  }
  int rc = fi_getinfo(FI_VERSION(1, 17), node.c_str(), "0", FI_SOURCE, hints, &info_);
  fi_freeinfo(hints);
  if (rc) {
    throw FabricError(fiError("fi_getinfo", rc) + " for provider " + choice.libfabricName +
                      (choice.usesHost ? " on host " + node : std::string()) +
                      (options_.provider == "verbs" ? " (no RDMA device?)" : ""));
  }
  providerName_ = info_->fabric_attr->prov_name;
  // shm completes a posted write inside fi_write; the others move data (and completions) only as they
  // are progressed, so a sleeping progress thread is woken after a post.
  senderProgress_ = choice.usesHost;
  mrMode_ = info_->domain_attr->mr_mode;
  maxMsgBytes_ = info_->ep_attr->max_msg_size;

  check(fi_fabric(info_->fabric_attr, &fabric_, nullptr), "fi_fabric");
  check(fi_domain(fabric_, info_, &domain_, nullptr), "fi_domain");

  fi_cq_attr cqAttr{};
  cqAttr.format = FI_CQ_FORMAT_CONTEXT;
  cqAttr.size = std::max<size_t>(options_.maxOutstandingWrites * 2, 128);
  cqAttr.wait_obj = choice.fdWait ? FI_WAIT_FD : FI_WAIT_NONE;
  rc = fi_cq_open(domain_, &cqAttr, &cq_, nullptr);
  if (rc && choice.fdWait) {
    cqAttr.wait_obj = FI_WAIT_NONE;
    rc = fi_cq_open(domain_, &cqAttr, &cq_, nullptr);
  }
  check(rc, "fi_cq_open");
  if (cqAttr.wait_obj == FI_WAIT_FD && fi_control(&cq_->fid, FI_GETWAIT, &cqFd_) == 0 && cqFd_ >= 0) {
    fdWaitUsable_ = true;
    fdWaitOffered_ = true;
  }

  fi_av_attr avAttr{};
  avAttr.type = FI_AV_TABLE;
  check(fi_av_open(domain_, &avAttr, &av_, nullptr), "fi_av_open");
  check(fi_endpoint(domain_, info_, &ep_, nullptr), "fi_endpoint");
  check(fi_ep_bind(ep_, &cq_->fid, FI_TRANSMIT | FI_RECV), "fi_ep_bind(cq)");
  check(fi_ep_bind(ep_, &av_->fid, 0), "fi_ep_bind(av)");
  check(fi_enable(ep_), "fi_enable");

  wakeFd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakeFd_ < 0) throw FabricError(std::string("eventfd failed: ") + strerror(errno));
  openDoorbell(localName);
}

void Fabric::openDoorbell(const std::string& localName) {
  bellName_ = localName + ".bell";
  const std::string path = "/dev/shm/" + bellName_;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw FabricError("cannot create " + path + ": " + strerror(errno));
  void* p = MAP_FAILED;
  if (ftruncate(fd, kDoorbellBytes) == 0) p = mmap(nullptr, kDoorbellBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) {
    unlink(path.c_str());
    throw FabricError("cannot map " + path + ": " + strerror(errno));
  }
  bell_ = new (p) Doorbell{};
}

Fabric::Peer::~Peer() {
  if (bell) munmap(bell, kDoorbellBytes);
}

void Fabric::kickLocked(Peer& peer) {
  if (!peer.bell) return;
  // Pairs with the sleeper's store of `sleeping` then re-check: either it sees our write, or we see it asleep.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (peer.bell->sleeping.load()) {
    peer.bell->seq.fetch_add(1);
    futexWake(&peer.bell->seq);
  }
}

void Fabric::close() {
  if (closed_.exchange(true)) return;
  untrackLive(this, epName_);
  stop_.store(true);
  wake();
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    closeLocked();
  }
  // Last: closing the endpoint is a provider call too.
  {
    std::lock_guard<std::mutex> lock(watchdogMu_);
    watchdogStop_ = true;
  }
  watchdogCv_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
}

void Fabric::closeLocked() {
  ProviderCall call(providerCallSince_);
  // Endpoint first (no more transfers), then memory, then the rest.
  if (ep_) fi_close(&ep_->fid), ep_ = nullptr;
  for (auto& [id, r] : regions_) releaseRegionMemory(r);
  for (auto& r : retired_) releaseRegionMemory(r);
  regions_.clear();
  retired_.clear();
  for (auto& op : ops_) op.peer.reset();
  peers_.clear();
  if (av_) fi_close(&av_->fid), av_ = nullptr;
  if (cq_) fi_close(&cq_->fid), cq_ = nullptr;
  if (domain_) fi_close(&domain_->fid), domain_ = nullptr;
  if (fabric_) fi_close(&fabric_->fid), fabric_ = nullptr;
  if (info_) fi_freeinfo(info_), info_ = nullptr;
  if (wakeFd_ >= 0) ::close(wakeFd_), wakeFd_ = -1;
  if (bell_) {
    munmap(bell_, kDoorbellBytes);
    bell_ = nullptr;
    unlink(("/dev/shm/" + bellName_).c_str());
  }
  watches_.clear();
}

void Fabric::releaseRegionMemory(Region& r) {
  if (r.mr) fi_close(&r.mr->fid), r.mr = nullptr;
  if (r.base) {
    // Keep the range reserved (a peer holding the old key may still write); give the pages back.
    madvise(r.base, r.mapped, MADV_DONTNEED);
  }
}

// Blobs start with magic u32, version u16, provider code u16 (addon.ts reads the region id right after).
void Fabric::writeBlobHeader(Writer& w, uint32_t magic) const {
  w.put(magic);
  w.put(kBlobVersion);
  w.put(chooseProvider(options_.provider).code);
}

void Fabric::readBlobHeader(Reader& rd, uint32_t magic, const char* what) const {
  if (rd.get<uint32_t>() != magic) throw UsageError(std::string("not ") + (what[0] == 'e' ? "an " : "a ") + what + " blob");
  if (rd.get<uint16_t>() != kBlobVersion) throw UsageError(std::string(what) + " blob version mismatch");
  if (rd.get<uint16_t>() != chooseProvider(options_.provider).code) {
    throw UsageError(std::string(what) + " blob from another fabric provider");
  }
}

std::vector<uint8_t> Fabric::endpointBlob() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!ep_) throw UsageError("fabric is closed");
  char name[512];
  size_t len = sizeof name;
  check(fi_getname(&ep_->fid, name, &len), "fi_getname");
  const ProcessIdentity& self = selfIdentity();
  Writer w;
  writeBlobHeader(w, kEndpointMagic);
  w.put(self.pid);
  w.put(self.startTicks);
  w.bytes(self.bootId, 16);
  w.put(static_cast<uint32_t>(len));
  w.bytes(name, len);
  w.put(static_cast<uint32_t>(bellName_.size()));
  w.bytes(bellName_.data(), bellName_.size());
  return w.buf;
}

void* Fabric::registerRegion(uint32_t id, uint64_t sizeBytes) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!domain_) throw UsageError("fabric is closed");
  if (sizeBytes == 0 || sizeBytes > options_.maxRegionBytes) {
    throw UsageError("region size " + std::to_string(sizeBytes) + " out of range (1.." +
                     std::to_string(options_.maxRegionBytes) + " bytes, maxRegionBytes)");
  }
  if (regions_.count(id)) throw UsageError("region " + std::to_string(id) + " already registered");
  for (const Region& r : retired_) {
    if (r.id == id) throw UsageError("region id " + std::to_string(id) + " was retired; ids are not reused");
  }
  Region r;
  r.id = id;
  r.size = sizeBytes;
  r.mapped = pageRound(sizeBytes);
  void* p = mmap(nullptr, r.mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) throw FabricError(std::string("mmap failed: ") + strerror(errno));
  r.base = static_cast<uint8_t*>(p);
  // Children must not share these pages (copy-on-write would break registrations on RDMA hardware).
  madvise(r.base, r.mapped, MADV_DONTFORK);
  int rc = fi_mr_reg(domain_, r.base, r.mapped, FI_WRITE | FI_REMOTE_WRITE, 0, id, 0, &r.mr, nullptr);
  if (rc) {
    munmap(r.base, r.mapped);
    throw FabricError(fiError("fi_mr_reg", rc));
  }
  if (mrMode_ & FI_MR_ENDPOINT) {
    rc = fi_mr_bind(r.mr, &ep_->fid, 0);
    if (!rc) rc = fi_mr_enable(r.mr);
    if (rc) {
      fi_close(&r.mr->fid);
      munmap(r.base, r.mapped);
      throw FabricError(fiError("fi_mr_bind/enable", rc));
    }
  }
  r.desc = fi_mr_desc(r.mr);
  r.key = fi_mr_key(r.mr);
  r.remoteBase = (mrMode_ & FI_MR_VIRT_ADDR) ? reinterpret_cast<uint64_t>(r.base) : 0;
  stats_.reservedBytes += r.mapped;
  void* base = r.base;
  regions_.emplace(id, std::move(r));
  return base;
}

Fabric::Region& Fabric::regionLocked(uint32_t id) {
  auto it = regions_.find(id);
  if (it == regions_.end() || it->second.retiring) {
    throw UsageError("unknown or retired local region " + std::to_string(id));
  }
  return it->second;
}

std::vector<uint8_t> Fabric::regionBlob(uint32_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  Region& r = regionLocked(id);
  Writer w;
  writeBlobHeader(w, kRegionMagic);
  w.put(r.id);
  w.put(r.size);
  w.put(r.remoteBase);
  w.put(r.key);
  return w.buf;
}

void Fabric::retireRegion(uint32_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  Region& r = regionLocked(id);
  for (uint32_t i = 0; i < watches_.size(); i++) {
    if (watches_[i].active && watches_[i].region == id) {
      watches_[i].active = false;
      freeWatches_.push_back(i);
    }
  }
  r.retiring = true;
  r.retireAtNs = nowNs() + static_cast<uint64_t>(options_.writeTimeoutMs) * 1'000'000ull;
  finalizeRegionsLocked(nowNs());
}

void Fabric::finalizeRegionsLocked(uint64_t now) {
  for (auto it = regions_.begin(); it != regions_.end();) {
    Region& r = it->second;
    if (r.retiring && (r.inflight == 0 || now >= r.retireAtNs)) {
      // Queued writes still reading from it are dropped (their peers are past the deadline anyway).
      for (auto& [pid, peer] : peers_) {
        auto& q = peer->queue;
        size_t before = q.size();
        q.erase(std::remove_if(q.begin(), q.end(), [&](const PendingWrite& w) { return w.localRegion == r.id; }),
                q.end());
        queuedTotal_ -= before - q.size();
        stats_.writesDropped += before - q.size();
      }
      releaseRegionMemory(r);
      retired_.push_back(std::move(r));
      it = regions_.erase(it);
    } else {
      ++it;
    }
  }
}

uint32_t Fabric::addPeer(uint32_t peerId, const uint8_t* blob, size_t len) {
  Reader rd(blob, len, "endpoint");
  readBlobHeader(rd, kEndpointMagic, "endpoint");
  auto peer = std::make_shared<Peer>();
  peer->id = peerId;
  peer->identity.pid = rd.get<uint32_t>();
  peer->identity.startTicks = rd.get<uint64_t>();
  rd.bytes(peer->identity.bootId, 16);
  const uint32_t nameLen = rd.get<uint32_t>();
  std::vector<uint8_t> name(nameLen);
  rd.bytes(name.data(), nameLen);
  const uint32_t bellLen = rd.get<uint32_t>();
  std::string bellName(bellLen, '\0');
  rd.bytes(bellName.data(), bellLen);
  if (bellName.find('/') != std::string::npos) throw UsageError("bad doorbell name in endpoint blob");
  peer->colocated = sameHost(peer->identity, selfIdentity());
  peer->sameProcess = peer->identity.pid == selfIdentity().pid && peer->identity.startTicks == selfIdentity().startTicks;
  peer->name.assign(reinterpret_cast<const char*>(name.data()), name.size());
  if (peer->colocated && !bellName.empty()) {
    // Without it the peer still sees our writes, only later (when its idle sleep ends).
    int fd = ::open(("/dev/shm/" + bellName).c_str(), O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
      void* p = mmap(nullptr, kDoorbellBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      ::close(fd);
      if (p != MAP_FAILED) peer->bell = static_cast<Doorbell*>(p);
    }
  }

  // Mapped here, outside mu_; recorded for the watchdog only once the peer is added.
  std::shared_ptr<ShmLock> shmLock;
  const bool shmPeer = options_.provider == "shm" && peer->colocated && !peer->sameProcess;
  if (shmPeer) {
    std::string why;
    shmLock = ShmLock::open(shmFileOfAddress(peer->name), peer->identity.pid, &why);
  }
  const ProcessIdentity identity = peer->identity;

  std::lock_guard<std::mutex> lock(mu_);
  if (!av_) throw UsageError("fabric is closed");
  ProviderCall call(providerCallSince_);
  auto it = peers_.find(peerId);
  if (it != peers_.end()) {
    if (!it->second->dead) {
      throw UsageError("peer " + std::to_string(peerId) + " already added and alive; removePeer first");
    }
    // A restarted member: retire the dead incarnation's address.
    fi_av_remove(av_, &it->second->addr, 1, 0);
    dropQueueLocked(*it->second);
    it->second->removed = true;
    peers_.erase(it);
  }
  int n = fi_av_insert(av_, name.data(), 1, &peer->addr, 0, nullptr);
  if (n != 1) throw FabricError(fiError("fi_av_insert", n < 0 ? n : -FI_EINVAL));
  peer->generation = ++peerGenerations_[peerId];
  const uint32_t generation = peer->generation;
  peers_.emplace(peerId, std::move(peer));
  stats_.peers = peers_.size();
  if (shmPeer) {
    std::lock_guard<std::mutex> shmLockGuard(shmMu_);
    // Bounded: the oldest entries (long-gone incarnations) go first.
    if (shmPeers_.size() >= 1024) shmPeers_.erase(shmPeers_.begin());
    shmPeers_.push_back({peerId, identity, std::move(shmLock)});
  }
  return generation;
}

void Fabric::addRemoteRegion(uint32_t peerId, const uint8_t* blob, size_t len) {
  Reader rd(blob, len, "region");
  readBlobHeader(rd, kRegionMagic, "region");
  const uint32_t id = rd.get<uint32_t>();
  RemoteRegion rr;
  rr.size = rd.get<uint64_t>();
  rr.base = rd.get<uint64_t>();
  rr.key = rd.get<uint64_t>();
  std::lock_guard<std::mutex> lock(mu_);
  peerLocked(peerId)->regions[id] = rr;
}

std::shared_ptr<Fabric::Peer> Fabric::peerLocked(uint32_t id) {
  auto it = peers_.find(id);
  if (it == peers_.end()) throw UsageError("unknown peer " + std::to_string(id));
  return it->second;
}

void Fabric::removePeer(uint32_t peerId) {
  std::lock_guard<std::mutex> lock(mu_);
  auto peer = peerLocked(peerId);
  dropQueueLocked(*peer);
  peer->removed = true;
  peer->dead = true;
  // Posted operations keep their shared_ptr and finish (or fail) on their own.
  ProviderCall call(providerCallSince_);
  fi_av_remove(av_, &peer->addr, 1, 0);
  peers_.erase(peerId);
  stats_.peers = peers_.size();
}

int Fabric::write(uint32_t peerId, uint32_t remoteRegion, uint64_t remoteOffset, uint32_t localRegion,
                  uint64_t localOffset, uint64_t len) {
  int status;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!ep_) throw UsageError("fabric is closed");
    auto peer = peerLocked(peerId);
    Region& local = regionLocked(localRegion);
    if (len == 0) throw UsageError("write of 0 bytes");
    if (localOffset + len > local.size || localOffset + len < localOffset) {
      throw UsageError("local range out of region " + std::to_string(localRegion));
    }
    auto rr = peer->regions.find(remoteRegion);
    if (rr == peer->regions.end()) {
      throw UsageError("peer " + std::to_string(peerId) + " has no region " + std::to_string(remoteRegion));
    }
    if (remoteOffset + len > rr->second.size || remoteOffset + len < remoteOffset) {
      throw UsageError("remote range out of region " + std::to_string(remoteRegion) + " of peer " +
                       std::to_string(peerId));
    }
    status = enqueueLocked(peer, localRegion, localOffset, rr->second.base + remoteOffset, rr->second.key, len);
  }
  if (status == kQueued || (senderProgress_ && sleeping_.load(std::memory_order_relaxed))) wake();
  return status;
}

int Fabric::put(uint32_t region, uint64_t offset, uint64_t len, const uint32_t* peerIds, size_t count) {
  int dead = 0;
  bool needWake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!ep_) throw UsageError("fabric is closed");
    Region& local = regionLocked(region);
    if (len == 0) throw UsageError("put of 0 bytes");
    if (offset + len > local.size || offset + len < offset) {
      throw UsageError("range out of region " + std::to_string(region));
    }
    for (size_t i = 0; i < count; i++) {
      auto peer = peerLocked(peerIds[i]);
      auto rr = peer->regions.find(region);
      if (rr == peer->regions.end()) {
        throw UsageError("peer " + std::to_string(peerIds[i]) + " has no region " + std::to_string(region));
      }
      if (offset + len > rr->second.size) {
        throw UsageError("range out of region " + std::to_string(region) + " of peer " + std::to_string(peerIds[i]));
      }
      int s = enqueueLocked(peer, region, offset, rr->second.base + offset, rr->second.key, len);
      if (s == kPeerDead) dead++;
      if (s == kQueued) needWake = true;
    }
  }
  if (needWake || (senderProgress_ && sleeping_.load(std::memory_order_relaxed))) wake();
  return dead;
}

int Fabric::enqueueLocked(const std::shared_ptr<Peer>& peer, uint32_t localRegion, uint64_t localOffset,
                          uint64_t remoteAddr, uint64_t key, uint64_t len) {
  if (peer->dead) {
    stats_.writesDropped++;
    return kPeerDead;
  }
  Region& local = regions_.at(localRegion);
  const uint64_t now = nowNs();
  const uint64_t block = std::min<uint64_t>(options_.blockSizeBytes, maxMsgBytes_ ? maxMsgBytes_ : UINT64_MAX);
  int status = kPosted;
  for (uint64_t done = 0; done < len;) {
    const uint64_t n = std::min(block, len - done);
    PendingWrite w{localRegion, localOffset + done, remoteAddr + done, key, n, now};
    done += n;
    if (peer->queue.empty()) {
      int rc = postLocked(peer, w);
      if (rc == 0) continue;
      if (rc != -FI_EAGAIN) {
        markDeadLocked(*peer, fiError("fi_write", rc));
        return kPeerDead;
      }
    } else {
      // Same range as the last queued write: that one will read the memory when it is posted, so it
      // carries this write's bytes too. Only the tail may absorb it, or order would change.
      const PendingWrite& b = peer->queue.back();
      if (b.localRegion == w.localRegion && b.localOffset == w.localOffset && b.remoteAddr == w.remoteAddr &&
          b.len == w.len) {
        stats_.writesCoalesced++;
        status = kQueued;
        continue;
      }
    }
    if (peer->queue.size() >= options_.maxQueuedWrites) {
      markDeadLocked(*peer, "write queue overflow: " + std::to_string(options_.maxQueuedWrites) +
                                " writes waiting (maxQueuedWrites), peer not draining");
      return kPeerDead;
    }
    peer->queue.push_back(w);
    local.inflight++;
    queuedTotal_++;
    stats_.writesQueued++;
    status = kQueued;
  }
  return status;
}

int Fabric::postLocked(const std::shared_ptr<Peer>& peer, const PendingWrite& w) {
  if (peer->sameProcess && !nameLive(peer->name)) return -FI_ESHUTDOWN;
  if (freeOps_.empty()) return -FI_EAGAIN;
  auto rit = regions_.find(w.localRegion);
  if (rit == regions_.end()) return -FI_EINVAL;
  Region& local = rit->second;
  const uint32_t idx = freeOps_.back();
  Op& op = ops_[idx];
  int rc;
  {
    ProviderCall call(providerCallSince_);
    rc = static_cast<int>(
        fi_write(ep_, local.base + w.localOffset, w.len, local.desc, peer->addr, w.remoteAddr, w.key, &op.ctx));
  }
  if (rc == 0) {
    freeOps_.pop_back();
    op.inUse = true;
    op.peer = peer;
    op.region = w.localRegion;
    op.len = w.len;
    op.postedAtNs = nowNs();
    peer->outstanding++;
    local.inflight++;
    stats_.writesPosted++;
    stats_.bytesPosted += w.len;
    kickLocked(*peer);
  } else if (rc == -FI_EAGAIN) {
    stats_.eagain++;
    kickLocked(*peer);  // shm: its command queue drains only when it progresses
  }
  return rc;
}

bool Fabric::drainQueuesLocked() {
  if (queuedTotal_ == 0) return false;
  bool progressed = false;
  for (auto& [id, peer] : peers_) {
    auto& q = peer->queue;
    while (!q.empty()) {
      int rc = postLocked(peer, q.front());
      if (rc == -FI_EAGAIN) break;
      auto r = regions_.find(q.front().localRegion);
      if (r != regions_.end()) r->second.inflight--;  // moved from queued to posted (posted counted again)
      q.pop_front();
      queuedTotal_--;
      progressed = true;
      if (rc != 0) {
        markDeadLocked(*peer, fiError("fi_write", rc));
        break;
      }
    }
  }
  return progressed;
}

int Fabric::drainCqLocked() {
  ProviderCall call(providerCallSince_);
  int total = 0;
  fi_cq_entry entries[kCqBatch];
  for (int round = 0; round < 16; round++) {
    ssize_t n = fi_cq_read(cq_, entries, kCqBatch);
    if (n > 0) {
      for (ssize_t i = 0; i < n; i++) {
        Op* op = reinterpret_cast<Op*>(entries[i].op_context);
        if (!op || !op->inUse) continue;
        op->inUse = false;
        if (op->peer) op->peer->outstanding--;
        auto r = regions_.find(op->region);
        if (r != regions_.end()) r->second.inflight--;
        op->peer.reset();
        freeOps_.push_back(static_cast<uint32_t>(op - ops_.data()));
        stats_.writesCompleted++;
      }
      total += static_cast<int>(n);
      if (n < kCqBatch) break;
    } else if (n == -FI_EAVAIL) {
      fi_cq_err_entry err{};
      if (fi_cq_readerr(cq_, &err, 0) <= 0) break;
      stats_.cqErrors++;
      total++;
      Op* op = reinterpret_cast<Op*>(err.op_context);
      if (op && op->inUse) {
        op->inUse = false;
        auto r = regions_.find(op->region);
        if (r != regions_.end()) r->second.inflight--;
        if (op->peer) {
          op->peer->outstanding--;
          if (!op->peer->removed) {
            const char* detail = fi_cq_strerror(cq_, err.prov_errno, err.err_data, nullptr, 0);
            markDeadLocked(*op->peer, std::string("write failed: ") + fi_strerror(err.err) +
                                          (detail ? std::string(" (") + detail + ")" : std::string()));
          }
        }
        op->peer.reset();
        freeOps_.push_back(static_cast<uint32_t>(op - ops_.data()));
      }
    } else {
      break;  // -FI_EAGAIN: empty
    }
  }
  return total;
}

bool Fabric::scanWatchesLocked() {
  bool any = false;
  for (uint32_t i = 0; i < watches_.size(); i++) {
    Watch& w = watches_[i];
    if (!w.active) continue;
    const uint64_t v = __atomic_load_n(w.word, __ATOMIC_ACQUIRE);
    if (v == w.last) continue;
    w.last = v;
    stats_.watchChanges++;
    if (!w.reported) {
      w.reported = true;
      changed_.push_back(i);
    }
    any = true;
  }
  return any;
}

void Fabric::dropQueueLocked(Peer& peer) {
  for (const auto& w : peer.queue) {
    auto r = regions_.find(w.localRegion);
    if (r != regions_.end()) r->second.inflight--;
  }
  queuedTotal_ -= peer.queue.size();
  stats_.writesDropped += peer.queue.size();
  peer.queue.clear();
}

void Fabric::markDeadLocked(Peer& peer, const std::string& reason) {
  if (peer.dead) return;
  peer.dead = true;
  dropQueueLocked(peer);
  peerEvents_.push_back({peer.id, reason, peer.generation});
}

void Fabric::checkDeadlinesLocked(uint64_t now) {
  const uint64_t limit = static_cast<uint64_t>(options_.writeTimeoutMs) * 1'000'000ull;
  for (auto& op : ops_) {
    // `now` was read before the lock: writes posted since then are younger than it.
    if (op.inUse && op.peer && !op.peer->dead && now > op.postedAtNs && now - op.postedAtNs > limit) {
      markDeadLocked(*op.peer, "write not completed within " + std::to_string(options_.writeTimeoutMs) +
                                   " ms (writeTimeoutMs)");
    }
  }
  for (auto& [id, peer] : peers_) {
    if (!peer->queue.empty() && now > peer->queue.front().queuedAtNs &&
        now - peer->queue.front().queuedAtNs > limit) {
      markDeadLocked(*peer, "write could not be posted within " + std::to_string(options_.writeTimeoutMs) +
                                " ms (writeTimeoutMs)");
    }
  }
}

void Fabric::checkLiveness() {
  struct Probe {
    uint32_t peer;
    uint32_t pid;
    uint64_t start;
  };
  std::vector<Probe> probes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, peer] : peers_) {
      if (peer->colocated && !peer->dead) probes.push_back({id, peer->identity.pid, peer->identity.startTicks});
    }
  }
  std::vector<uint32_t> gone;
  for (const Probe& p : probes) {
    if (processLiveness(p.pid, p.start) == Liveness::Dead) gone.push_back(p.peer);
  }
  if (gone.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (uint32_t id : gone) {
    auto it = peers_.find(id);
    if (it != peers_.end()) markDeadLocked(*it->second, "process exited (co-located liveness check)");
  }
}

uint32_t Fabric::watch(uint32_t region, uint64_t offset) {
  bool needsWake = false;
  uint32_t id = watchLocked(region, offset, needsWake);
  if (needsWake) wake();
  return id;
}

uint32_t Fabric::watchLocked(uint32_t region, uint64_t offset, bool& needsWake) {
  std::lock_guard<std::mutex> lock(mu_);
  Region& r = regionLocked(region);
  if (offset % 8 != 0 || offset + 8 > r.size) {
    throw UsageError("watch offset " + std::to_string(offset) + " must be 8-byte aligned inside region " +
                     std::to_string(region));
  }
  uint32_t id;
  if (!freeWatches_.empty()) {
    id = freeWatches_.back();
    freeWatches_.pop_back();
  } else {
    id = static_cast<uint32_t>(watches_.size());
    watches_.emplace_back();
  }
  Watch& w = watches_[id];
  w.active = true;
  w.region = region;
  w.word = reinterpret_cast<const uint64_t*>(r.base + offset);
  w.last = __atomic_load_n(w.word, __ATOMIC_ACQUIRE);
  // Report it once right away: the word may have changed before the caller looked (a peer that started
  // earlier), and a change that happened before the watch existed would otherwise never be reported.
  w.reported = true;
  changed_.push_back(id);
  needsWake = true;
  return id;
}

void Fabric::unwatch(uint32_t watchId) {
  std::lock_guard<std::mutex> lock(mu_);
  if (watchId >= watches_.size() || !watches_[watchId].active) {
    throw UsageError("unknown watch " + std::to_string(watchId));
  }
  watches_[watchId].active = false;
  freeWatches_.push_back(watchId);
}

void Fabric::takeEvents(std::vector<uint32_t>* changed, std::vector<PeerEvent>* peerEvents) {
  std::lock_guard<std::mutex> lock(mu_);
  changed->clear();
  for (uint32_t id : changed_) {
    if (id < watches_.size()) {
      watches_[id].reported = false;
      if (watches_[id].active) changed->push_back(id);
    }
  }
  changed_.clear();
  peerEvents->swap(peerEvents_);
  peerEvents_.clear();
}

FabricStats Fabric::stats() {
  std::lock_guard<std::mutex> lock(mu_);
  FabricStats s = stats_;
  s.outstanding = ops_.size() - freeOps_.size();
  s.queued = queuedTotal_;
  s.regions = regions_.size();
  s.peers = peers_.size();
  s.sleeps = sleeps_.load(std::memory_order_relaxed);
  s.fdWait = fdWaitOffered_ && !fdWaitDisabled_.load();
  s.shmLocksReleased = shmLocksReleased_.load();
  return s;
}

size_t Fabric::queuedTo(uint32_t peerId) {
  std::lock_guard<std::mutex> lock(mu_);
  return peerLocked(peerId)->queue.size();
}

void Fabric::wake() {
  // The progress thread sleeps either in ppoll (eventfd) or on the doorbell futex: ring both.
  if (bell_) {
    bell_->seq.fetch_add(1);
    futexWake(&bell_->seq);
  }
  if (wakeFd_ >= 0) {
    uint64_t one = 1;
    ssize_t rc = ::write(wakeFd_, &one, sizeof one);
    (void)rc;
  }
}

void Fabric::waitIdle(uint64_t sleepUs) {
  if (fdWaitUsable_) {
    // The provider's CQ fd (net) wakes us when data arrives, the eventfd when this process posts.
    pollfd fds[2] = {{wakeFd_, POLLIN, 0}, {cqFd_, POLLIN, 0}};
    {
      std::lock_guard<std::mutex> lock(mu_);
      fid* f = &cq_->fid;
      // fi_trywait says whether blocking on the fd is safe (no events hidden in provider state).
      if (fi_trywait(fabric_, &f, 1) != FI_SUCCESS) return;
    }
    timespec ts{static_cast<time_t>(sleepUs / 1'000'000), static_cast<long>((sleepUs % 1'000'000) * 1000)};
    sleeping_.store(true);
    sleeps_.fetch_add(1, std::memory_order_relaxed);
    int rc = ppoll(fds, 2, &ts, nullptr);
    sleeping_.store(false);
    if (rc > 0 && (fds[0].revents & POLLIN)) {
      uint64_t v;
      ssize_t r = ::read(wakeFd_, &v, sizeof v);
      (void)r;
    }
    lastWaitWokeOnCqFd_ = rc > 0 && (fds[1].revents & POLLIN);
    return;
  }
  // Otherwise sleep on the doorbell: co-located writers and this process's own posts ring it.
  const uint32_t seq = bell_->seq.load();
  bell_->sleeping.store(1);
  bool pending;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending = scanWatchesLocked() || !peerEvents_.empty();
  }
  if (!pending) {
    sleeping_.store(true);
    sleeps_.fetch_add(1, std::memory_order_relaxed);
    futexWait(&bell_->seq, seq, sleepUs);
    sleeping_.store(false);
  }
  bell_->sleeping.store(0);
}

void Fabric::progressLoop() {
  // Short sleeps must be short: the default timer slack (50 µs) would stretch every one of them.
  prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
  pthread_setname_np(pthread_self(), "squall-fabric");
  const uint64_t spinNs = static_cast<uint64_t>(options_.pollSpinUs) * 1000ull;
  const uint64_t livenessNs = static_cast<uint64_t>(options_.livenessCheckMs) * 1'000'000ull;

  uint64_t lastActivityNs = nowNs();
  uint64_t sleepUs = 0;
  while (!stop_.load(std::memory_order_relaxed)) {
    bool activity = false;
    bool notify = false;
    const uint64_t now = nowNs();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!ep_) break;
      stats_.progressLoops++;
      if (drainCqLocked() > 0) activity = true;
      if (drainQueuesLocked()) activity = true;
      if (scanWatchesLocked()) activity = true;
      if (now - lastDeadlineCheckNs_ >= kDeadlineCheckNs) {
        lastDeadlineCheckNs_ = now;
        checkDeadlinesLocked(now);
        finalizeRegionsLocked(now);
      }
      notify = !changed_.empty() || !peerEvents_.empty();
    }
    if (livenessNs && now - lastLivenessCheckNs_ >= livenessNs) {
      lastLivenessCheckNs_ = now;
      checkLiveness();
      std::lock_guard<std::mutex> lock(mu_);
      notify = notify || !peerEvents_.empty();
    }
    if (notify && !notifyPending.exchange(true)) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        stats_.notifications++;
      }
      notify_();
    }
    if (fdWaitUsable_ && lastWaitWokeOnCqFd_) {
      // Some providers (net in 1.17) leave their wait fd readable with nothing to read; blocking on it would
      // then be a busy loop. After a run of such wake-ups, fall back to timed sleeps.
      spuriousCqWakeups_ = activity ? 0 : spuriousCqWakeups_ + 1;
      if (spuriousCqWakeups_ >= 64) {
        fdWaitUsable_ = false;
        fdWaitDisabled_.store(true);
      }
    }
    if (activity) {
      lastActivityNs = now;
      sleepUs = 0;
      continue;
    }
    if (now - lastActivityNs < spinNs) {
      cpuRelax();
      continue;
    }
    // While writes are in flight the provider may need us (tcp/net move data only when progressed), so the
    // long fd-based idle wait is for a quiet endpoint only.
    bool busy;
    {
      std::lock_guard<std::mutex> lock(mu_);
      busy = queuedTotal_ > 0 || freeOps_.size() < ops_.size();
    }
    // When every write to us rings something (the CQ fd, or the doorbell of co-located peers), a quiet
    // endpoint may sleep long; a remote peer writing without an fd event (tcp via rxm, verbs) is noticed
    // only by polling, so then the sleep is bounded by pollSleepMaxUs.
    bool allRing;
    {
      std::lock_guard<std::mutex> lock(mu_);
      allRing = fdWaitUsable_ || std::all_of(peers_.begin(), peers_.end(), [](const auto& p) { return p.second->bell != nullptr; });
    }
    const uint64_t idleMaxUs = allRing ? std::max<uint64_t>(options_.pollSleepMaxUs, kFdIdleWaitMaxUs) : options_.pollSleepMaxUs;
    const uint64_t cap = busy ? options_.pollSleepMaxUs : idleMaxUs;
    sleepUs = sleepUs ? std::min<uint64_t>(sleepUs * 2, cap) : 1;
    waitIdle(std::min(sleepUs, cap));
  }
}

void Fabric::watchdogLoop() {
  pthread_setname_np(pthread_self(), "squall-fabwatch");
  const uint64_t stuckNs = static_cast<uint64_t>(options_.shmLockRecoveryMs) * 1'000'000ull;
  const auto period = std::chrono::milliseconds(std::max<uint32_t>(5, options_.shmLockRecoveryMs / 2));
  std::unique_lock<std::mutex> lock(watchdogMu_);
  while (!watchdogStop_) {
    watchdogCv_.wait_for(lock, period);
    if (watchdogStop_) break;
    // Our own lock may be left held while nothing here is stuck (a dead writer held it; our progress does
    // not always need it), yet every other writer to us is; so it is looked at on every round.
    const uint64_t since = providerCallSince_.load(std::memory_order_relaxed);
    const uint64_t now = nowNs();
    const bool stuck = since != 0 && now > since && now - since >= stuckNs;
    if (!stuck && !(ownLock_ && ownLock_->held())) continue;
    lock.unlock();
    recoverShmLocks(stuck ? since : 0);
    lock.lock();
  }
}

void Fabric::recoverShmLocks(uint64_t stuckSince) {
  // Only a dead co-located peer can have left a lock held: its own endpoint's (it died progressing), or ours
  // (it died writing to us). A live peer's endpoint is left alone whatever its lock says. stuckSince: the
  // start of the provider call found stuck (its target may be a dead peer's lock), or 0 (our own lock only).
  std::vector<ShmPeer> peers;
  {
    std::lock_guard<std::mutex> lock(shmMu_);
    peers = shmPeers_;
  }
  bool anyDead = false;
  std::vector<std::shared_ptr<ShmLock>> held;
  for (const ShmPeer& p : peers) {
    if (processLiveness(p.identity.pid, p.identity.startTicks) != Liveness::Dead) continue;
    anyDead = true;
    if (stuckSince != 0 && p.lock && p.lock->held()) held.push_back(p.lock);
  }
  if (!anyDead) return;
  if (ownLock_ && ownLock_->held()) held.push_back(ownLock_);
  for (int i = 0; i < kLockSamples && !held.empty(); i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(kLockSampleMs));
    // The stuck call finished: whatever held its lock was alive.
    if (stuckSince != 0 && providerCallSince_.load(std::memory_order_relaxed) != stuckSince) return;
    held.erase(std::remove_if(held.begin(), held.end(), [](const std::shared_ptr<ShmLock>& l) { return !l->held(); }),
               held.end());
  }
  for (const auto& l : held) {
    l->release();
    shmLocksReleased_.fetch_add(1);
  }
}

void Fabric::holdShmLockForTest(int64_t peer) {
  std::shared_ptr<ShmLock> target;
  if (peer < 0) {
    target = ownLock_;
  } else {
    std::lock_guard<std::mutex> lock(shmMu_);
    for (const ShmPeer& p : shmPeers_) {
      if (p.id == static_cast<uint64_t>(peer)) target = p.lock;  // the latest incarnation wins
    }
  }
  if (!target) throw UsageError("no known shm lock for " + (peer < 0 ? std::string("this endpoint") : "peer " + std::to_string(peer)));
  target->acquire();
}

}  // namespace squall

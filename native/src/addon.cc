// N-API binding of the native data plane (fabric.h). JS sees:
//   new Fabric(options, onEvents)            onEvents(changedWatchIds: Uint32Array, peerEvents: [peer, reason, generation][])
//   endpointBlob() / regionBlob(id)          Buffers to hand to peers over the group's own channel
//   register(id, sizeBytes) -> ArrayBuffer   registered memory, no copy: remote writes land in it
//   retireRegion(id)                         detaches the ArrayBuffer, retires the MR
//   addPeer(peer, blob) -> generation / addRemoteRegion(peer, blob) / removePeer(peer)
//   write(peer, remoteRegion, remoteOffset, localRegion, localOffset, length) -> 0 posted | 1 queued | 2 dead
//   put(region, offset, length, peers: Uint32Array) -> number of dead peers skipped
//   watch(region, offset) -> id / unwatch(id)
//   stats() / queuedTo(peer) / close()
// and module functions info() and cleanupStaleShm(prefix).
#include <napi.h>
#include <rdma/fabric.h>
#include <rdma/fi_errno.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>
#include <unordered_map>

#include "fabric.h"
#include "identity.h"

namespace {

using squall::Fabric;
using squall::FabricError;
using squall::FabricOptions;
using squall::PeerEvent;
using squall::UsageError;

// What the thread-safe function carries to the JS thread. Shared with the wrapper so a late call after
// close() or after the wrapper was collected finds a closed fabric instead of freed memory.
struct Shared {
  std::unique_ptr<Fabric> fabric;
};

void ThrowFrom(Napi::Env env, const UsageError& e) { Napi::TypeError::New(env, e.what()).ThrowAsJavaScriptException(); }
void ThrowFrom(Napi::Env env, const std::exception& e) { Napi::Error::New(env, e.what()).ThrowAsJavaScriptException(); }

// Usage errors become TypeErrors, provider failures plain Errors carrying libfabric's message.
#define GUARD_BEGIN try {
#define GUARD_END(env, ret)             \
  }                                     \
  catch (const UsageError& e) {         \
    ThrowFrom(env, e);                  \
    return ret;                         \
  }                                     \
  catch (const std::exception& e) {     \
    ThrowFrom(env, e);                  \
    return ret;                         \
  }

uint32_t U32(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsNumber()) throw UsageError(std::string(name) + " must be a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (d < 0 || d > 4294967295.0 || d != static_cast<double>(static_cast<uint64_t>(d))) {
    throw UsageError(std::string(name) + " must be an integer in [0, 2^32)");
  }
  return static_cast<uint32_t>(d);
}

uint64_t U53(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsNumber()) throw UsageError(std::string(name) + " must be a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (d < 0 || d > 9007199254740991.0 || d != static_cast<double>(static_cast<uint64_t>(d))) {
    throw UsageError(std::string(name) + " must be a non-negative safe integer");
  }
  return static_cast<uint64_t>(d);
}

std::pair<const uint8_t*, size_t> Bytes(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsTypedArray()) throw UsageError(std::string(name) + " must be a Uint8Array");
  auto a = info[i].As<Napi::TypedArray>();
  if (a.TypedArrayType() != napi_uint8_array) throw UsageError(std::string(name) + " must be a Uint8Array");
  auto u = a.As<Napi::Uint8Array>();
  return {u.Data(), u.ByteLength()};
}

class FabricWrap : public Napi::ObjectWrap<FabricWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Fabric",
                       {
                           InstanceMethod("endpointBlob", &FabricWrap::EndpointBlob),
                           InstanceMethod("register", &FabricWrap::Register),
                           InstanceMethod("regionBlob", &FabricWrap::RegionBlob),
                           InstanceMethod("retireRegion", &FabricWrap::RetireRegion),
                           InstanceMethod("addPeer", &FabricWrap::AddPeer),
                           InstanceMethod("addRemoteRegion", &FabricWrap::AddRemoteRegion),
                           InstanceMethod("removePeer", &FabricWrap::RemovePeer),
                           InstanceMethod("write", &FabricWrap::Write),
                           InstanceMethod("put", &FabricWrap::Put),
                           InstanceMethod("watch", &FabricWrap::Watch),
                           InstanceMethod("unwatch", &FabricWrap::Unwatch),
                           InstanceMethod("stats", &FabricWrap::Stats),
                           InstanceMethod("queuedTo", &FabricWrap::QueuedTo),
                           InstanceMethod("holdShmLockForTest", &FabricWrap::HoldShmLockForTest),
                           InstanceMethod("close", &FabricWrap::Close),
                           InstanceAccessor("provider", &FabricWrap::Provider, nullptr),
                           InstanceAccessor("shmName", &FabricWrap::ShmName, nullptr),
                       });
  }

  explicit FabricWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FabricWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
      Napi::TypeError::New(env, "new Fabric(options, onEvents)").ThrowAsJavaScriptException();
      return;
    }
    FabricOptions o;
    try {
      Napi::Object opts = info[0].As<Napi::Object>();
      auto str = [&](const char* k) -> std::string {
        Napi::Value v = opts.Get(k);
        if (!v.IsString()) throw UsageError(std::string("options.") + k + " must be a string");
        return v.As<Napi::String>().Utf8Value();
      };
      auto num = [&](const char* k) -> double {
        Napi::Value v = opts.Get(k);
        if (!v.IsNumber()) throw UsageError(std::string("options.") + k + " must be a number");
        double d = v.As<Napi::Number>().DoubleValue();
        if (d < 0 || d != static_cast<double>(static_cast<uint64_t>(d))) {
          throw UsageError(std::string("options.") + k + " must be a non-negative integer");
        }
        return d;
      };
      o.provider = str("provider");
      o.host = str("host");
      o.shmPrefix = str("shmPrefix");
      o.writeTimeoutMs = static_cast<uint32_t>(num("writeTimeoutMs"));
      o.pollSpinUs = static_cast<uint32_t>(num("pollSpinUs"));
      o.pollSleepMaxUs = static_cast<uint32_t>(num("pollSleepMaxUs"));
      o.livenessCheckMs = static_cast<uint32_t>(num("livenessCheckMs"));
      o.shmLockRecoveryMs = static_cast<uint32_t>(num("shmLockRecoveryMs"));
      o.maxOutstandingWrites = static_cast<uint32_t>(num("maxOutstandingWrites"));
      o.maxQueuedWrites = static_cast<uint32_t>(num("maxQueuedWrites"));
      o.blockSizeBytes = static_cast<uint64_t>(num("blockSizeBytes"));
      o.maxRegionBytes = static_cast<uint64_t>(num("maxRegionBytes"));
    } catch (const UsageError& e) {
      ThrowFrom(env, e);
      return;
    }

    shared_ = std::make_shared<Shared>();
    tsfn_ = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "squall-fabric-events", 0, 1);
    std::weak_ptr<Shared> weak = shared_;
    Napi::ThreadSafeFunction tsfn = tsfn_;
    try {
      shared_->fabric = std::make_unique<Fabric>(o, [weak, tsfn]() mutable {
        // Progress thread. The pointer travels to the JS thread and is deleted there.
        auto* keep = new std::shared_ptr<Shared>(weak.lock());
        if (!*keep || tsfn.NonBlockingCall(keep, &FabricWrap::Deliver) != napi_ok) delete keep;
      });
    } catch (const UsageError& e) {
      tsfn_.Release();
      released_ = true;
      ThrowFrom(env, e);
      return;
    } catch (const std::exception& e) {
      tsfn_.Release();
      released_ = true;
      ThrowFrom(env, e);
      return;
    }
    napi_add_env_cleanup_hook(env, &FabricWrap::CleanupHook, this);
    hookAdded_ = true;
  }

  ~FabricWrap() override { Shutdown(false); }

 private:
  static void CleanupHook(void* arg) { static_cast<FabricWrap*>(arg)->Shutdown(false); }

  static void Deliver(Napi::Env env, Napi::Function callback, std::shared_ptr<Shared>* data) {
    std::unique_ptr<std::shared_ptr<Shared>> holder(data);
    if (!env || !*data) return;
    Fabric* f = (*data)->fabric.get();
    if (!f || f->closed()) return;
    // Clear first: anything that happens from now on notifies again.
    f->notifyPending.store(false);
    std::vector<uint32_t> changed;
    std::vector<PeerEvent> peers;
    f->takeEvents(&changed, &peers);
    if (changed.empty() && peers.empty()) return;
    auto ids = Napi::Uint32Array::New(env, changed.size());
    for (size_t i = 0; i < changed.size(); i++) ids[i] = changed[i];
    Napi::Value peerArg = env.Null();
    if (!peers.empty()) {
      auto arr = Napi::Array::New(env, peers.size());
      for (size_t i = 0; i < peers.size(); i++) {
        auto pair = Napi::Array::New(env, 3);
        pair.Set(0u, Napi::Number::New(env, peers[i].peer));
        pair.Set(1u, Napi::String::New(env, peers[i].reason));
        pair.Set(2u, Napi::Number::New(env, peers[i].generation));
        arr.Set(static_cast<uint32_t>(i), pair);
      }
      peerArg = arr;
    }
    callback.Call({ids, peerArg});
  }

  // Detaches every ArrayBuffer handed out (views become empty instead of dangling), closes the fabric.
  void Shutdown(bool fromJs = true) {
    if (shared_ && shared_->fabric) {
      if (fromJs) {
        for (auto& [id, ref] : buffers_) DetachRef(ref);
      }
      buffers_.clear();
      shared_->fabric->close();
    }
    if (!released_ && tsfn_) {
      released_ = true;
      tsfn_.Release();
    }
    if (hookAdded_) {
      hookAdded_ = false;
      napi_remove_env_cleanup_hook(Env(), &FabricWrap::CleanupHook, this);
    }
  }

  static void DetachRef(Napi::Reference<Napi::ArrayBuffer>& ref) {
    if (ref.IsEmpty()) return;
    Napi::ArrayBuffer ab = ref.Value();
    if (!ab.IsEmpty() && !ab.IsDetached()) ab.Detach();
  }

  Fabric& F() {
    if (!shared_ || !shared_->fabric || shared_->fabric->closed()) throw UsageError("fabric is closed");
    return *shared_->fabric;
  }

  Napi::Value EndpointBlob(const Napi::CallbackInfo& info) {
    GUARD_BEGIN
    auto b = F().endpointBlob();
    return Napi::Buffer<uint8_t>::Copy(info.Env(), b.data(), b.size());
    GUARD_END(info.Env(), info.Env().Undefined())
  }

  Napi::Value Register(const Napi::CallbackInfo& info) {
    GUARD_BEGIN
    uint32_t id = U32(info, 0, "regionId");
    uint64_t size = U53(info, 1, "sizeBytes");
    void* base = F().registerRegion(id, size);
    // The memory outlives the ArrayBuffer (it stays reserved while the fabric lives), so no finalizer work.
    auto ab = Napi::ArrayBuffer::New(info.Env(), base, size);
    buffers_[id] = Napi::Reference<Napi::ArrayBuffer>::New(ab, 0);
    return ab;
    GUARD_END(info.Env(), info.Env().Undefined())
  }

  Napi::Value RegionBlob(const Napi::CallbackInfo& info) {
    GUARD_BEGIN
    auto b = F().regionBlob(U32(info, 0, "regionId"));
    return Napi::Buffer<uint8_t>::Copy(info.Env(), b.data(), b.size());
    GUARD_END(info.Env(), info.Env().Undefined())
  }

  Napi::Value RetireRegion(const Napi::CallbackInfo& info) {
    GUARD_BEGIN
    uint32_t id = U32(info, 0, "regionId");
    F().retireRegion(id);
    auto it = buffers_.find(id);
    if (it != buffers_.end()) {
      DetachRef(it->second);
      buffers_.erase(it);
    }
    return info.Env().Undefined();
    GUARD_END(info.Env(), info.Env().Undefined())
  }

  Napi::Value AddPeer(const Napi::CallbackInfo& info) {
    GUARD_BEGIN
    uint32_t peer = U32(info, 0, "peer");
    auto [p, n] = Bytes(info, 1, "blob");
    return Napi::Number::New(info.Env(), F().addPeer(peer, p, n));
    GUARD_END(info.Env(), info.Env().Undefined())
  }

  Napi::Value AddRemoteRegion(const Napi::CallbackInfo& info) {
    GUARD_BEGIN
    uint32_t peer = U32(info, 0, "peer");
    auto [p, n] = Bytes(info, 1, "blob");
    F().addRemoteRegion(peer, p, n);
    return info.Env().Undefined();
    GUARD_END(info.Env(), info.Env().Undefined())
  }

  Napi::Value RemovePeer(const Napi::CallbackInfo& info) {
    GUARD_BEGIN
    F().removePeer(U32(info, 0, "peer"));
    return info.Env().Undefined();
    GUARD_END(info.Env(), info.Env().Undefined())
  }

  Napi::Value Write(const Napi::CallbackInfo& info) {
    GUARD_BEGIN
    int s = F().write(U32(info, 0, "peer"), U32(info, 1, "remoteRegion"), U53(info, 2, "remoteOffset"),
                      U32(info, 3, "localRegion"), U53(info, 4, "localOffset"), U53(info, 5, "length"));
    return Napi::Number::New(info.Env(), s);
    GUARD_END(info.Env(), info.Env().Undefined())
  }

  Napi::Value Put(const Napi::CallbackInfo& info) {
    GUARD_BEGIN
    uint32_t region = U32(info, 0, "regionId");
    uint64_t offset = U53(info, 1, "offset");
    uint64_t length = U53(info, 2, "length");
    if (info.Length() < 4 || !info[3].IsTypedArray() ||
        info[3].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
      throw UsageError("peers must be a Uint32Array");
    }
    auto peers = info[3].As<Napi::Uint32Array>();
    int dead = F().put(region, offset, length, peers.Data(), peers.ElementLength());
    return Napi::Number::New(info.Env(), dead);
    GUARD_END(info.Env(), info.Env().Undefined())
  }

  Napi::Value Watch(const Napi::CallbackInfo& info) {
    GUARD_BEGIN
    uint32_t id = F().watch(U32(info, 0, "regionId"), U53(info, 1, "offset"));
    return Napi::Number::New(info.Env(), id);
    GUARD_END(info.Env(), info.Env().Undefined())
  }

  Napi::Value Unwatch(const Napi::CallbackInfo& info) {
    GUARD_BEGIN
    F().unwatch(U32(info, 0, "watchId"));
    return info.Env().Undefined();
    GUARD_END(info.Env(), info.Env().Undefined())
  }

  Napi::Value QueuedTo(const Napi::CallbackInfo& info) {
    GUARD_BEGIN
    return Napi::Number::New(info.Env(), static_cast<double>(F().queuedTo(U32(info, 0, "peer"))));
    GUARD_END(info.Env(), info.Env().Undefined())
  }

  // holdShmLockForTest(peer?): the peer's shm lock, or this endpoint's own without an argument.
  Napi::Value HoldShmLockForTest(const Napi::CallbackInfo& info) {
    GUARD_BEGIN
    F().holdShmLockForTest(info.Length() > 0 && !info[0].IsUndefined() ? static_cast<int64_t>(U32(info, 0, "peer")) : -1);
    return info.Env().Undefined();
    GUARD_END(info.Env(), info.Env().Undefined())
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    GUARD_BEGIN
    auto s = F().stats();
    Napi::Env env = info.Env();
    auto o = Napi::Object::New(env);
    auto set = [&](const char* k, uint64_t v) { o.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
    set("writesPosted", s.writesPosted);
    set("writesCompleted", s.writesCompleted);
    set("writesQueued", s.writesQueued);
    set("writesCoalesced", s.writesCoalesced);
    set("writesDropped", s.writesDropped);
    set("bytesPosted", s.bytesPosted);
    set("eagain", s.eagain);
    set("cqErrors", s.cqErrors);
    set("watchChanges", s.watchChanges);
    set("notifications", s.notifications);
    set("progressLoops", s.progressLoops);
    set("sleeps", s.sleeps);
    set("outstanding", s.outstanding);
    set("queued", s.queued);
    set("regions", s.regions);
    set("peers", s.peers);
    set("reservedBytes", s.reservedBytes);
    set("shmLocksReleased", s.shmLocksReleased);
    o.Set("fdWait", Napi::Boolean::New(env, s.fdWait));
    o.Set("shmLockRecovery", Napi::Boolean::New(env, s.shmLockRecovery));
    return o;
    GUARD_END(info.Env(), info.Env().Undefined())
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  Napi::Value Provider(const Napi::CallbackInfo& info) {
    if (!shared_ || !shared_->fabric) return info.Env().Undefined();
    return Napi::String::New(info.Env(), shared_->fabric->providerName());
  }

  Napi::Value ShmName(const Napi::CallbackInfo& info) {
    if (!shared_ || !shared_->fabric) return info.Env().Undefined();
    return Napi::String::New(info.Env(), shared_->fabric->shmName());
  }

  std::shared_ptr<Shared> shared_;
  Napi::ThreadSafeFunction tsfn_;
  bool released_ = false;
  bool hookAdded_ = false;
  std::unordered_map<uint32_t, Napi::Reference<Napi::ArrayBuffer>> buffers_;
};

// info(): { version, providers: [{ provider, epType, rma, dataProgress, mrMode, injectSize }] }
Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = Napi::Object::New(env);
  uint32_t v = fi_version();
  o.Set("version", Napi::String::New(env, std::to_string(FI_MAJOR(v)) + "." + std::to_string(FI_MINOR(v))));
  auto arr = Napi::Array::New(env);
  fi_info* hints = fi_allocinfo();
  hints->caps = FI_RMA;
  hints->ep_attr->type = FI_EP_RDM;
  hints->mode = ~0ull;
  hints->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY | FI_MR_ENDPOINT;
  fi_info* list = nullptr;
  if (fi_getinfo(FI_VERSION(1, 17), nullptr, nullptr, 0, hints, &list) == 0) {
    uint32_t i = 0;
    std::vector<std::string> seen;
    for (fi_info* cur = list; cur; cur = cur->next) {
      std::string key = std::string(cur->fabric_attr->prov_name) + "/" + (cur->domain_attr->name ? cur->domain_attr->name : "");
      if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
      seen.push_back(key);
      auto p = Napi::Object::New(env);
      p.Set("provider", Napi::String::New(env, cur->fabric_attr->prov_name));
      p.Set("fabric", Napi::String::New(env, cur->fabric_attr->name ? cur->fabric_attr->name : ""));
      p.Set("domain", Napi::String::New(env, cur->domain_attr->name ? cur->domain_attr->name : ""));
      p.Set("mrMode", Napi::Number::New(env, cur->domain_attr->mr_mode));
      p.Set("injectSize", Napi::Number::New(env, static_cast<double>(cur->tx_attr->inject_size)));
      arr.Set(i++, p);
    }
    fi_freeinfo(list);
  }
  fi_freeinfo(hints);
  o.Set("providers", arr);
  return o;
}

Napi::Value CleanupStaleShm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "cleanupStaleShm(prefix[, dir])").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string prefix = info[0].As<Napi::String>().Utf8Value();
  if (prefix.empty()) {
    Napi::TypeError::New(env, "prefix must not be empty").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string dir = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "/dev/shm";
  auto removed = squall::cleanupStaleShm(prefix, dir);
  auto arr = Napi::Array::New(env, removed.size());
  for (size_t i = 0; i < removed.size(); i++) arr.Set(static_cast<uint32_t>(i), Napi::String::New(env, removed[i]));
  return arr;
}

Napi::Value ProcessStart(const Napi::CallbackInfo& info) {
  const auto& self = squall::selfIdentity();
  auto o = Napi::Object::New(info.Env());
  o.Set("pid", Napi::Number::New(info.Env(), self.pid));
  o.Set("startTicks", Napi::Number::New(info.Env(), static_cast<double>(self.startTicks)));
  return o;
}

Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  exports.Set("Fabric", FabricWrap::Init(env));
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("cleanupStaleShm", Napi::Function::New(env, CleanupStaleShm));
  exports.Set("processIdentity", Napi::Function::New(env, ProcessStart));
  return exports;
}

}  // namespace

NODE_API_MODULE(squall_fabric, InitModule)

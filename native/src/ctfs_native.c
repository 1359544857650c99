// ctfs_native: a minimal io_uring write path for the ctfs WAL, on raw syscalls
// (no liburing) and plain Node-API.
//
// The module keeps no mutable global state: every ring lives in a napi external
// owned by the JS thread (main or worker) that opened it, so loading the addon
// from several threads at once is safe (NAPI_MODULE_INIT makes it context-aware).

#ifndef NAPI_VERSION
#define NAPI_VERSION 8  // binding.gyp sets it too; 8 is Node 12.22+/14.17+
#endif
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

// UIO_MAXIOV: the kernel rejects a writev with more iovecs than this (EINVAL).
#define IOV_PER_SQE 1024
// Ring sizes accepted by ringOpen: at least one full chain of a few writev SQEs
// plus the fsync, and at most what a WAL batch can use without wasting memory.
#define MIN_ENTRIES 8
#define MAX_ENTRIES 4096
// Largest integer a JS Number holds exactly (Number.MAX_SAFE_INTEGER).
#define MAX_SAFE_INT 9007199254740991.0

// Distinguishes our ring externals from any other external handed to us
// (the two words are just ASCII "ctfsring" and "io_uring").
static const napi_type_tag RING_TAG = {0x6374667372696e67ULL, 0x696f5f7572696e67ULL};

typedef struct {
  uint32_t first, count;  // iovec slice of this writev
  uint64_t bytes;         // bytes it asks for
  bool fsync;
} op_t;

typedef struct {
  int fd;  // -1 once closed
  unsigned entries;
  // Submission queue: head is advanced by the kernel, tail by us.
  unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
  struct io_uring_sqe *sqes;
  // Completion queue: tail is advanced by the kernel, head by us.
  unsigned *cq_head, *cq_tail, *cq_mask;
  struct io_uring_cqe *cqes;
  void *sq_map, *cq_map;
  size_t sq_map_len, cq_map_len, sqes_len;
  op_t *ops;           // one per SQE of the chain in flight
  int32_t *res;        // its CQE result, indexed by user_data
  struct iovec *iov;   // per-ring scratch, grown on demand
  size_t iov_cap;
} ring_t;

// ---------------------------------------------------------------- errors

static const char *errno_name(int e, char *buf, size_t len) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char *n = strerrorname_np(e);
  if (n) return n;
#else
  // musl has no strerrorname_np; name the errors a WAL writer can meet.
  switch (e) {
    case EIO: return "EIO";
    case ENOSPC: return "ENOSPC";
    case EDQUOT: return "EDQUOT";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case EFBIG: return "EFBIG";
    case EROFS: return "EROFS";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENOSYS: return "ENOSYS";
    case ENOMEM: return "ENOMEM";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ECANCELED: return "ECANCELED";
    case EINTR: return "EINTR";
    case EAGAIN: return "EAGAIN";
  }
#endif
  snprintf(buf, len, "E%d", e);
  return buf;
}

static const char *errno_desc(int e) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char *d = strerrordesc_np(e);  // thread-safe, unlike strerror
  if (d) return d;
#endif
  (void)e;
  return "system error";
}

// Throws an Error shaped like Node's fs errors: message "CODE: desc, syscall",
// plus code, errno (positive) and syscall properties.
static void throw_errno(napi_env env, int e, const char *syscall, const char *code) {
  char nbuf[16], msg[160];
  if (!code) code = errno_name(e, nbuf, sizeof nbuf);
  snprintf(msg, sizeof msg, "%s: %s, %s", code,
           strcmp(code, "ESHORTWRITE") == 0 ? "write made no progress" : errno_desc(e), syscall);
  napi_value c, m, err, num, sc;
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &c);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_error(env, c, m, &err);
  napi_create_int32(env, e, &num);
  napi_set_named_property(env, err, "errno", num);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sc);
  napi_set_named_property(env, err, "syscall", sc);
  napi_throw(env, err);
}

// ---------------------------------------------------------------- ring

static int sys_setup(unsigned entries, struct io_uring_params *p) {
  return (int)syscall(__NR_io_uring_setup, entries, p);
}

static int sys_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags) {
  return (int)syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, NULL, 0);
}

static void ring_unmap(ring_t *r) {
  if (r->sqes) munmap(r->sqes, r->sqes_len);
  if (r->cq_map && r->cq_map != r->sq_map) munmap(r->cq_map, r->cq_map_len);
  if (r->sq_map) munmap(r->sq_map, r->sq_map_len);
  if (r->fd >= 0) close(r->fd);
  free(r->ops);
  free(r->res);
  free(r->iov);
  r->sqes = NULL;
  r->sq_map = r->cq_map = NULL;
  r->ops = NULL;
  r->res = NULL;
  r->iov = NULL;
  r->iov_cap = 0;
  r->fd = -1;
}

// Returns 0 or a positive errno; on failure nothing is left open.
static int ring_init(ring_t *r, unsigned entries) {
  memset(r, 0, sizeof *r);
  r->fd = -1;
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  // SUBMIT_ALL: a bad SQE in the middle of a chain must not leave the rest of
  // the chain unconsumed in the SQ (they complete as cancelled instead).
  // Kernels before 5.18 reject the flag; they work the old way.
  p.flags = IORING_SETUP_SUBMIT_ALL;
  int fd = sys_setup(entries, &p);
  if (fd < 0 && errno == EINVAL) {
    memset(&p, 0, sizeof p);
    fd = sys_setup(entries, &p);
  }
  if (fd < 0) return errno;
  r->fd = fd;
  r->entries = p.sq_entries;

  r->sq_map_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  r->cq_map_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  bool single = p.features & IORING_FEAT_SINGLE_MMAP;  // SQ and CQ share one mapping (5.4+)
  if (single) {
    if (r->cq_map_len > r->sq_map_len) r->sq_map_len = r->cq_map_len;
    r->cq_map_len = r->sq_map_len;
  }
  int e = 0;
  r->sq_map = mmap(NULL, r->sq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                   IORING_OFF_SQ_RING);
  if (r->sq_map == MAP_FAILED) {
    e = errno;
    r->sq_map = NULL;
    goto fail;
  }
  if (single) {
    r->cq_map = r->sq_map;
  } else {
    r->cq_map = mmap(NULL, r->cq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                     IORING_OFF_CQ_RING);
    if (r->cq_map == MAP_FAILED) {
      e = errno;
      r->cq_map = NULL;
      goto fail;
    }
  }
  r->sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
  r->sqes = mmap(NULL, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                 IORING_OFF_SQES);
  if (r->sqes == MAP_FAILED) {
    e = errno;
    r->sqes = NULL;
    goto fail;
  }
  char *sq = r->sq_map, *cq = r->cq_map;
  r->sq_head = (unsigned *)(sq + p.sq_off.head);
  r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
  r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
  r->sq_array = (unsigned *)(sq + p.sq_off.array);
  r->cq_head = (unsigned *)(cq + p.cq_off.head);
  r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
  r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
  r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
  r->ops = calloc(r->entries, sizeof *r->ops);
  r->res = calloc(r->entries, sizeof *r->res);
  if (!r->ops || !r->res) {
    e = ENOMEM;
    goto fail;
  }
  return 0;
fail:
  ring_unmap(r);
  return e;
}

// Claims the next SQE slot (the caller guarantees room) and zeroes it.
static struct io_uring_sqe *ring_sqe(ring_t *r, unsigned i) {
  unsigned idx = (*r->sq_tail + i) & *r->sq_mask;
  r->sq_array[idx] = idx;
  struct io_uring_sqe *sqe = &r->sqes[idx];
  memset(sqe, 0, sizeof *sqe);
  return sqe;
}

// Makes SQEs [0, n) visible to the kernel, submits them and waits until all n
// CQEs are reaped into r->res. Returns 0 or a positive errno of io_uring_enter.
// Only a broken ring fails here; I/O errors arrive in r->res.
static int ring_submit_wait(ring_t *r, unsigned n) {
  // Release: the SQE contents must be visible before the kernel sees the tail.
  __atomic_store_n(r->sq_tail, *r->sq_tail + n, __ATOMIC_RELEASE);
  unsigned submitted = 0, reaped = 0;
  while (reaped < n) {
    unsigned to_submit = n - submitted;
    // Waiting for every outstanding CQE is safe: after a partial submission
    // the kernel returns without waiting, and we submit the rest next time.
    int ret = sys_enter(r->fd, to_submit, n - reaped, IORING_ENTER_GETEVENTS);
    if (ret < 0) {
      int e = errno;
      // EINTR: a signal (e.g. the profiler's). EAGAIN/EBUSY: transient lack of
      // kernel resources; completions in flight will free them.
      if (e != EINTR && e != EAGAIN && e != EBUSY) return e;
    } else {
      submitted += (unsigned)ret;
    }
    unsigned head = *r->cq_head;
    // Acquire: read the CQEs only after the kernel's tail store is visible.
    unsigned tail = __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE);
    for (; head != tail; head++) {
      struct io_uring_cqe *cqe = &r->cqes[head & *r->cq_mask];
      if (cqe->user_data < n) r->res[cqe->user_data] = cqe->res;
      reaped++;
    }
    // Release: we are done reading these CQEs before the kernel may reuse them.
    __atomic_store_n(r->cq_head, head, __ATOMIC_RELEASE);
  }
  return 0;
}

// Writes iov[0, niov) at consecutive offsets from pos, then syncs (0: none,
// 1: fdatasync, 2: fsync). Returns only when the kernel holds no pointer into
// the caller's memory. On failure throws and returns false.
static bool ring_writev(napi_env env, ring_t *r, int fd, size_t niov, uint64_t pos, int sync) {
  struct iovec *iov = r->iov;
  size_t cursor = 0;
  bool need_sync = sync != 0;
  while (cursor < niov || need_sync) {
    // Each round is one linked chain: writev SQEs, then the fsync once every
    // remaining byte is in the chain. The link orders the fsync after the
    // writes and cancels the rest of the chain after a short or failed write.
    unsigned n = 0, max_writes = r->entries - (need_sync ? 1 : 0);
    struct io_uring_sqe *sqe = NULL;
    size_t c = cursor;
    uint64_t off = pos;
    while (c < niov && n < max_writes) {
      uint32_t cnt = (uint32_t)(niov - c < IOV_PER_SQE ? niov - c : IOV_PER_SQE);
      uint64_t bytes = 0;
      for (uint32_t k = 0; k < cnt; k++) bytes += iov[c + k].iov_len;
      sqe = ring_sqe(r, n);
      sqe->opcode = IORING_OP_WRITEV;
      sqe->flags = IOSQE_IO_LINK;
      sqe->fd = fd;
      sqe->off = off;
      sqe->addr = (uint64_t)(uintptr_t)&iov[c];
      sqe->len = cnt;
      sqe->user_data = n;
      r->ops[n] = (op_t){(uint32_t)c, cnt, bytes, false};
      off += bytes;
      c += cnt;
      n++;
    }
    if (c == niov && need_sync) {
      sqe = ring_sqe(r, n);
      sqe->opcode = IORING_OP_FSYNC;
      sqe->fd = fd;
      sqe->fsync_flags = sync == 1 ? IORING_FSYNC_DATASYNC : 0;
      sqe->user_data = n;
      r->ops[n] = (op_t){0, 0, 0, true};
      n++;
    }
    sqe->flags = 0;  // ends the chain; the next round starts a new one

    int e = ring_submit_wait(r, n);
    if (e) {
      // The ring is unusable and requests may still be queued; closing it makes
      // the kernel cancel them.
      ring_unmap(r);
      throw_errno(env, e, "io_uring_enter", NULL);
      return false;
    }

    for (unsigned i = 0; i < n; i++) {
      int32_t res = r->res[i];
      op_t *op = &r->ops[i];
      if (op->fsync) {
        if (res < 0) {
          throw_errno(env, -res, sync == 1 ? "fdatasync" : "fsync", NULL);
          return false;
        }
        need_sync = false;
        break;
      }
      if (res < 0) {
        throw_errno(env, -res, "write", NULL);
        return false;
      }
      if (res == 0) {
        // The kernel took no byte: resubmitting would loop forever.
        throw_errno(env, EIO, "write", "ESHORTWRITE");
        return false;
      }
      pos += (uint64_t)res;
      if ((uint64_t)res == op->bytes) {
        cursor = op->first + op->count;
        continue;
      }
      // Short write (e.g. the kernel caps one writev at ~2 GiB): skip what was
      // written and resubmit from there; the linked rest came back cancelled.
      size_t left = (size_t)res, k = op->first;
      while (left >= iov[k].iov_len) left -= iov[k++].iov_len;
      iov[k].iov_base = (char *)iov[k].iov_base + left;
      iov[k].iov_len -= left;
      cursor = k;
      break;
    }
  }
  return true;
}

// ---------------------------------------------------------------- helpers

static void ring_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  ring_t *r = data;
  if (r->fd >= 0) ring_unmap(r);
  free(r);
}

#define CHECK(call)                                                    \
  do {                                                                 \
    if ((call) != napi_ok) return throw_last(env);                     \
  } while (0)

// Rethrows a failed napi call as an exception, if it did not throw one itself.
static napi_value throw_last(napi_env env) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) {
    const napi_extended_error_info *info = NULL;
    napi_get_last_error_info(env, &info);
    napi_throw_error(env, NULL, info && info->error_message ? info->error_message : "napi call failed");
  }
  return NULL;
}

// Reads an integer Number in [lo, hi]: TypeError if not a number, RangeError
// if not an integer in range.
static bool get_int(napi_env env, napi_value v, double lo, double hi, const char *what, double *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s must be a number", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  double d;
  napi_get_value_double(env, v, &d);
  if (!(d >= lo && d <= hi) || floor(d) != d) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be an integer in [%.0f, %.0f]", what, lo, hi);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return false;
  }
  *out = d;
  return true;
}

// Returns the open ring behind a handle, or throws.
static ring_t *get_ring(napi_env env, napi_value v) {
  napi_valuetype t;
  bool ours = false;
  if (napi_typeof(env, v, &t) == napi_ok && t == napi_external)
    napi_check_object_type_tag(env, v, &RING_TAG, &ours);
  if (!ours) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "ring must be a handle from ringOpen()");
    return NULL;
  }
  void *data = NULL;
  napi_get_value_external(env, v, &data);
  ring_t *r = data;
  if (r->fd < 0) {
    napi_throw_error(env, "ERR_RING_CLOSED", "ring is closed");
    return NULL;
  }
  return r;
}

// ---------------------------------------------------------------- exports

static napi_value js_backend(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value s;
  CHECK(napi_create_string_utf8(env, "io_uring", NAPI_AUTO_LENGTH, &s));
  return s;
}

// Opening a ring is not enough: seccomp profiles may allow io_uring_setup but
// deny io_uring_enter, so a NOP goes through the whole round trip.
static napi_value js_probe(napi_env env, napi_callback_info info) {
  (void)info;
  ring_t r;
  bool ok = false;
  if (ring_init(&r, MIN_ENTRIES) == 0) {
    struct io_uring_sqe *sqe = ring_sqe(&r, 0);
    sqe->opcode = IORING_OP_NOP;
    ok = ring_submit_wait(&r, 1) == 0 && r.res[0] == 0;
    ring_unmap(&r);
  }
  napi_value b;
  CHECK(napi_get_boolean(env, ok, &b));
  return b;
}

static napi_value js_ring_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  double d;
  if (argc < 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "entries must be a number");
    return NULL;
  }
  if (!get_int(env, argv[0], MIN_ENTRIES, MAX_ENTRIES, "entries", &d)) return NULL;
  unsigned entries = (unsigned)d;
  if (entries & (entries - 1)) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "entries must be a power of two");
    return NULL;
  }
  ring_t *r = malloc(sizeof *r);
  if (!r) {
    throw_errno(env, ENOMEM, "io_uring_setup", NULL);
    return NULL;
  }
  int e = ring_init(r, entries);
  if (e) {
    free(r);
    throw_errno(env, e, "io_uring_setup", NULL);
    return NULL;
  }
  napi_value ext;
  if (napi_create_external(env, r, ring_finalize, NULL, &ext) != napi_ok) {
    ring_unmap(r);
    free(r);
    return throw_last(env);
  }
  CHECK(napi_type_tag_object(env, ext, &RING_TAG));
  return ext;
}

static napi_value js_ring_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1] = {NULL};
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_valuetype t = napi_undefined;
  bool ours = false;
  if (argc >= 1 && napi_typeof(env, argv[0], &t) == napi_ok && t == napi_external)
    napi_check_object_type_tag(env, argv[0], &RING_TAG, &ours);
  if (!ours) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "ring must be a handle from ringOpen()");
    return NULL;
  }
  void *data = NULL;
  CHECK(napi_get_value_external(env, argv[0], &data));
  ring_t *r = data;
  if (r->fd >= 0) ring_unmap(r);  // the struct itself stays until GC, so reuse throws
  return NULL;
}

// ringWrite(ring, fd, data: Uint8Array, ranges: Uint32Array, fileOffset, sync)
static napi_value js_ring_write(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS",
                          "ringWrite(ring, fd, data, ranges, fileOffset, sync) needs 6 arguments");
    return NULL;
  }
  ring_t *r = get_ring(env, argv[0]);
  if (!r) return NULL;
  double fd, file_off, sync;
  if (!get_int(env, argv[1], 0, INT32_MAX, "fd", &fd)) return NULL;

  bool is_ta = false;
  napi_typedarray_type tt;
  size_t data_len = 0, ranges_len = 0;
  void *data = NULL, *rdata = NULL;
  if (napi_is_typedarray(env, argv[2], &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, argv[2], &tt, &data_len, &data, NULL, NULL) != napi_ok ||
      tt != napi_uint8_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "data must be a Uint8Array");
    return NULL;
  }
  if (napi_is_typedarray(env, argv[3], &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, argv[3], &tt, &ranges_len, &rdata, NULL, NULL) != napi_ok ||
      tt != napi_uint32_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "ranges must be a Uint32Array");
    return NULL;
  }
  if (ranges_len % 2) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "ranges must hold [start, length] pairs");
    return NULL;
  }
  if (!get_int(env, argv[4], 0, MAX_SAFE_INT, "fileOffset", &file_off)) return NULL;
  if (!get_int(env, argv[5], 0, 2, "sync", &sync)) return NULL;

  size_t npairs = ranges_len / 2;
  if (npairs > r->iov_cap) {
    struct iovec *p = realloc(r->iov, npairs * sizeof *p);
    if (!p) {
      throw_errno(env, ENOMEM, "write", NULL);
      return NULL;
    }
    r->iov = p;
    r->iov_cap = npairs;
  }
  const uint32_t *rg = rdata;
  size_t niov = 0;
  double total = 0;
  for (size_t i = 0; i < npairs; i++) {
    uint64_t start = rg[2 * i], len = rg[2 * i + 1];
    if (start + len > data_len) {
      char msg[128];
      snprintf(msg, sizeof msg, "range %zu [%llu, +%llu) exceeds data length %zu", i,
               (unsigned long long)start, (unsigned long long)len, data_len);
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
      return NULL;
    }
    if (len == 0) continue;  // an empty iovec would only cost an SQE slot
    r->iov[niov].iov_base = (char *)data + start;
    r->iov[niov].iov_len = len;
    niov++;
    total += (double)len;
  }
  if (!ring_writev(env, r, (int)fd, niov, (uint64_t)file_off, (int)sync)) return NULL;
  napi_value out;
  CHECK(napi_create_double(env, total, &out));
  return out;
}

// fallocate(fd, offset, length): reserve blocks so WAL appends become overwrites.
static napi_value js_fallocate(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "fallocate(fd, offset, length) needs 3 arguments");
    return NULL;
  }
  double fd, off, len;
  if (!get_int(env, argv[0], 0, INT32_MAX, "fd", &fd) ||
      !get_int(env, argv[1], 0, MAX_SAFE_INT, "offset", &off) ||
      !get_int(env, argv[2], 0, MAX_SAFE_INT, "length", &len))
    return NULL;
  int rc;
  do rc = fallocate((int)fd, 0, (off_t)off, (off_t)len);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) throw_errno(env, errno, "fallocate", NULL);
  return NULL;
}

// MADV_POPULATE_WRITE (Linux 5.14+): fault a range in, writable, without touching its bytes.
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

// populate(view): prefaults the whole pages inside a typed array's memory (a SharedArrayBuffer a
// kernel is about to fill). On these VMs a first-touch fault costs ~17 us per 4 KiB page from JS
// and the kernel populates the same range ~7x faster. Only pages wholly inside the view are
// named, so neighbouring allocations are never affected. Returns false where the kernel lacks it.
static napi_value js_populate(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  bool is_ta = false;
  napi_typedarray_type tt;
  size_t len = 0;
  void *data = NULL;
  if (argc < 1 || napi_is_typedarray(env, argv[0], &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, argv[0], &tt, &len, &data, NULL, NULL) != napi_ok ||
      tt != napi_uint8_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "populate(view) needs a Uint8Array");
    return NULL;
  }
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t start = ((uintptr_t)data + page - 1) & ~(page - 1);
  uintptr_t end = ((uintptr_t)data + len) & ~(page - 1);
  bool ok = true;
  if (end > start) {
    int rc;
    do rc = madvise((void *)start, end - start, MADV_POPULATE_WRITE);
    while (rc < 0 && errno == EINTR);
    ok = rc == 0;
  }
  napi_value out;
  CHECK(napi_get_boolean(env, ok, &out));
  return out;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"backend", NULL, js_backend, NULL, NULL, NULL, napi_enumerable, NULL},
      {"probe", NULL, js_probe, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ringOpen", NULL, js_ring_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ringWrite", NULL, js_ring_write, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ringClose", NULL, js_ring_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fallocate", NULL, js_fallocate, NULL, NULL, NULL, napi_enumerable, NULL},
      {"populate", NULL, js_populate, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

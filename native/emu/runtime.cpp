// The CUDA emulator's runtime: launches, the fiber scheduler, barriers and warp collectives, and the
// loud failures (deadlock, device assert, faults, stack overflow, no progress).
//
// A launch runs its blocks one after another on the calling thread. A block's threads are fibers
// with their own guarded stacks; the scheduler (on the caller's stack) resumes every runnable
// fiber in the chosen order (forward, reverse, shuffled by seed), and each runs until it blocks in
// a barrier or warp collective, yields, or exits. When no fiber can run and some have not exited,
// the block is deadlocked and the report lists what every thread waits for. Faults inside a fiber
// (SIGSEGV, SIGBUS, SIGFPE, SIGILL) and the no-progress watchdog jump back to the launch with
// siglongjmp; the launch then fails with a message naming the kernel, block and thread.
//
// One launch at a time: the JNI bridge serialises every entry point with one mutex.
#include "cuda_emu.h"
#include "emu.h"

#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csetjmp>
#include <cstdarg>
#include <thread>
#include <unordered_map>
#include <vector>

thread_local constinit uint3 threadIdx __attribute__((tls_model("initial-exec"))) = {0, 0, 0};
thread_local constinit uint3 blockIdx __attribute__((tls_model("initial-exec"))) = {0, 0, 0};
thread_local constinit dim3 blockDim __attribute__((tls_model("initial-exec"))) = {1, 1, 1};
thread_local constinit dim3 gridDim __attribute__((tls_model("initial-exec"))) = {1, 1, 1};

extern "C" void hg_fiber_switch(void** save_sp, void* next_sp);
extern "C" void hg_fiber_start();
// Bounds of the static __shared__ variables outside kernel files (common headers); each kernel's
// own are in its file's section (KernelEntry::shared_begin/end). The linker provides them.
extern "C" char __start_hg_shared[] __attribute__((weak, visibility("hidden")));
extern "C" char __stop_hg_shared[] __attribute__((weak, visibility("hidden")));

namespace hg_emu {

static std::string vformat(const char* fmt, va_list ap) {
    char buf[512];
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(buf, sizeof buf, fmt, copy);
    va_end(copy);
    if (n < (int)sizeof buf) return std::string(buf, n < 0 ? 0 : n);
    std::string s(n, '\0');
    vsnprintf(s.data(), n + 1, fmt, ap);
    return s;
}

std::string format(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::string s = vformat(fmt, ap);
    va_end(ap);
    return s;
}

// ---- kernel registry --------------------------------------------------------------------------------
static std::vector<KernelEntry>& registry() {
    static std::vector<KernelEntry> entries;
    return entries;
}

Registrar::Registrar(const KernelEntry* entries, int n) { registry().insert(registry().end(), entries, entries + n); }
int kernel_count() { return (int)registry().size(); }
const KernelEntry& kernel(int index) { return registry().at(index); }

int find_kernel(const char* name) {
    static std::unordered_map<std::string, int> index;
    if (index.size() != registry().size()) {
        index.clear();
        for (int i = 0; i < kernel_count(); i++) index.emplace(registry()[i].name, i);
    }
    auto it = index.find(name);
    return it == index.end() ? -1 : it->second;
}

namespace {

// ---- fibers ---------------------------------------------------------------------------------------
enum State : uint8_t { RUNNABLE, AT_BARRIER, AT_WARP, EXITED, FAILED };

struct PendingCopy {
    void* dst;
    const void* src;
    int bytes, src_bytes, group;
};

struct Fiber {
    void* sp;
    State state;
    unsigned linear;
    uint3 tid;
    // where it waits (or failed): for reports
    const char* what;
    const char* file;
    int line;
    unsigned mask;
    std::vector<PendingCopy> copies; // cp.async copies not yet waited for
    int committed;                   // cp.async groups committed
};

struct Warp {
    unsigned exists;  // lanes this block has in this warp
    unsigned exited;  // lanes that returned
    unsigned arrived; // lanes waiting in a collective
    LaneCall calls[32];
    Collective op[32];
    unsigned mask[32];
};

constexpr unsigned MAX_THREADS = 1024;
constexpr size_t MAX_DYNAMIC_SHARED = 227 * 1024; // sm_90's opt-in maximum per block
constexpr size_t SMEM_CANARY = 64;

struct Launch {
    const KernelEntry* k;
    void** params;
    unsigned nthreads;
    uint64_t seq;           // launch number, for the watchdog
    std::vector<Fiber> fibers;
    std::vector<Warp> warps;
    std::vector<unsigned> order;
    uint64_t phase;         // barrier releases in this block: a new phase reorders
    unsigned pos;           // position in `order` of the running fiber
    bool end_pass;          // a barrier opened: back to the scheduler, which reorders
    uint64_t block_linear;
    unsigned at_barrier, exited;
    int bar_op, bar_acc, bar_result;
    const char *bar_what, *bar_file;
    int bar_line;
    bool failed;
    std::string error;
    void* sched_sp;
    uint8_t* dyn;           // dynamic shared memory (+ canary)
    size_t dyn_bytes, dyn_capacity;
};

Launch L;
int g_order = FORWARD;
uint64_t g_seed = 0;

thread_local constinit Fiber* t_cur __attribute__((tls_model("initial-exec"))) = nullptr;
thread_local constinit bool t_in_fiber __attribute__((tls_model("initial-exec"))) = false;
thread_local constinit sigjmp_buf* t_jmp __attribute__((tls_model("initial-exec"))) = nullptr;
struct Fault {
    int sig, code;
    void* addr;
};
thread_local constinit Fault t_fault __attribute__((tls_model("initial-exec"))) = {0, 0, nullptr};

// ---- fiber stacks: one reservation, a PROT_NONE guard below each stack --------------------------------
struct Stacks {
    uint8_t* base = nullptr;
    size_t stack = 0, guard = 0, slot = 0;
    unsigned ready = 0; // stacks made writable so far
} g_stacks;

void reserve_stacks() {
    if (g_stacks.base) return;
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    size_t kib = 64;
    if (const char* env = getenv("HG_EMU_STACK_KB")) kib = strtoul(env, nullptr, 10) > 0 ? strtoul(env, nullptr, 10) : kib;
    g_stacks.stack = (kib * 1024 + pg - 1) / pg * pg;
    g_stacks.guard = 4 * pg;
    g_stacks.slot = g_stacks.stack + g_stacks.guard;
    void* m = mmap(nullptr, g_stacks.slot * MAX_THREADS, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) throw EmuError(format("cannot reserve fiber stacks: %s", strerror(errno)));
    g_stacks.base = static_cast<uint8_t*>(m);
}

void ready_stacks(unsigned n) {
    for (; g_stacks.ready < n; g_stacks.ready++) {
        uint8_t* s = g_stacks.base + (size_t)g_stacks.ready * g_stacks.slot + g_stacks.guard;
        if (mprotect(s, g_stacks.stack, PROT_READ | PROT_WRITE) != 0)
            throw EmuError(format("cannot map fiber stacks: %s", strerror(errno)));
    }
}

// Which fiber's guard holds addr, or -1.
int stack_guard_hit(uintptr_t addr) {
    uintptr_t base = (uintptr_t)g_stacks.base;
    if (!g_stacks.base || addr < base || addr >= base + g_stacks.slot * MAX_THREADS) return -1;
    size_t off = addr - base;
    return off % g_stacks.slot < g_stacks.guard ? (int)(off / g_stacks.slot) : -1;
}

void fiber_main(Fiber* f);

void init_fiber(Fiber& f) {
    // Stagger the tops across cache sets: page-aligned tops would all map to the same sets.
    uint8_t* top_byte = g_stacks.base + (size_t)(f.linear + 1) * g_stacks.slot - (f.linear % 32) * 128;
    uint64_t* top = reinterpret_cast<uint64_t*>(top_byte);
    uint64_t* sp = top - 9; // 7 words popped/returned by hg_fiber_switch; keeps the ABI's 16-byte alignment
    sp[0] = 0;                                   // r15
    sp[1] = 0;                                   // r14
    sp[2] = reinterpret_cast<uint64_t>(&fiber_main); // r13: entry
    sp[3] = reinterpret_cast<uint64_t>(&f);      // r12: argument
    sp[4] = 0;                                   // rbx
    sp[5] = 0;                                   // rbp
    sp[6] = reinterpret_cast<uint64_t>(&hg_fiber_start);
    f.sp = sp;
}

// The scheduler starts a pass at the first runnable fiber; a fiber that blocks hands over directly
// to the next runnable one of the pass (one switch instead of two through the scheduler), and the
// last one of the pass returns to the scheduler.
inline void enter(Fiber& f) {
    threadIdx = f.tid;
    t_cur = &f;
}

void run_pass(unsigned first) {
    L.pos = first;
    Fiber& f = L.fibers[L.order[first]];
    enter(f);
    t_in_fiber = true;
    hg_fiber_switch(&L.sched_sp, f.sp);
    t_in_fiber = false;
    t_cur = nullptr;
}

// f stops running (waits, yields or exits): switch to the next runnable fiber of the pass.
inline void switch_from(Fiber& f) {
    if (!L.end_pass)
        for (unsigned i = L.pos + 1; i < L.nthreads; i++) {
            Fiber& g = L.fibers[L.order[i]];
            if (g.state == RUNNABLE) {
                L.pos = i;
                enter(g);
                hg_fiber_switch(&f.sp, g.sp);
                return;
            }
        }
    hg_fiber_switch(&f.sp, L.sched_sp);
}

// ---- the watchdog: a launch that makes no progress for a while is stopped -------------------------------
std::atomic<uint64_t> g_progress{0};     // barrier releases, completed collectives, exits, blocks
std::atomic<uint64_t> g_active_seq{0};   // the running launch, 0 when none
std::atomic<uint64_t> g_fired_seq{0};    // the launch the watchdog stopped
std::atomic<double> g_watchdog_seconds{60.0};
pthread_t g_launch_thread;
int g_watchdog_signal = 0;

inline void progressed() { g_progress.store(g_progress.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); }

void watchdog_loop() {
    using clock = std::chrono::steady_clock;
    uint64_t seq = 0, progress = 0;
    auto since = clock::now();
    for (;;) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        uint64_t s = g_active_seq.load(), p = g_progress.load(std::memory_order_relaxed);
        auto now = clock::now();
        if (s == 0 || s != seq || p != progress) {
            seq = s;
            progress = p;
            since = now;
            continue;
        }
        if (std::chrono::duration<double>(now - since).count() > g_watchdog_seconds.load()) {
            g_fired_seq.store(s);
            pthread_kill(g_launch_thread, g_watchdog_signal); // stops a fiber spinning without sync points
        }
    }
}

// ---- signals: faults inside fibers become launch errors; others go to the previous handler (the JVM's) --
struct sigaction g_previous[NSIG];

void on_signal(int sig, siginfo_t* info, void* context) {
    if (t_in_fiber && t_jmp) {
        if (sig != g_watchdog_signal || g_fired_seq.load() == L.seq) {
            t_fault = {sig, info->si_code, info->si_addr};
            siglongjmp(*t_jmp, 1);
        }
        return;
    }
    if (sig == g_watchdog_signal) return; // a late watchdog signal
    const struct sigaction& prev = g_previous[sig];
    if (prev.sa_flags & SA_SIGINFO) {
        prev.sa_sigaction(sig, info, context);
    } else if (prev.sa_handler == SIG_DFL) {
        signal(sig, SIG_DFL); // returning re-executes the fault, which now ends the process
    } else if (prev.sa_handler != SIG_IGN) {
        prev.sa_handler(sig);
    }
}

void install_signals_once() {
    static bool done = false;
    if (done) return;
    done = true;
    g_watchdog_signal = SIGRTMIN + 6;
    struct sigaction sa {};
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL}) sigaction(sig, &sa, &g_previous[sig]);
    sigaction(g_watchdog_signal, &sa, &g_previous[g_watchdog_signal]);
    std::thread(watchdog_loop).detach();
}

// A fiber that overflows its stack faults on the guard page: the handler needs another stack.
void install_altstack_once() {
    static thread_local bool done = false;
    if (done) return;
    done = true;
    stack_t current;
    if (sigaltstack(nullptr, &current) == 0 && !(current.ss_flags & SS_DISABLE) && current.ss_size >= 65536) return;
    stack_t ss{};
    ss.ss_size = 256 * 1024; // the JVM's crash reporter may run on it too
    ss.ss_sp = mmap(nullptr, ss.ss_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ss.ss_sp != MAP_FAILED) sigaltstack(&ss, nullptr);
}

// ---- reports ---------------------------------------------------------------------------------------
std::string dim(uint3 v) { return format("(%u,%u,%u)", v.x, v.y, v.z); }

std::string thread_name(const Fiber& f) { return "thread " + dim(f.tid); }

std::string block_name() { return "block " + dim(blockIdx); }

// Each thread's state, consecutive threads with the same state as one range.
std::string thread_states() {
    std::string out;
    int ranges = 0;
    auto describe = [](const Fiber& f) {
        switch (f.state) {
        case EXITED: return std::string("exited");
        case RUNNABLE: return std::string("runnable");
        case FAILED: return std::string("failed");
        case AT_BARRIER: return format("waiting at %s (%s:%d)", f.what, f.file, f.line);
        default: return format("waiting in %s (mask 0x%08x) at %s:%d", f.what, f.mask, f.file, f.line);
        }
    };
    for (unsigned i = 0; i < L.nthreads;) {
        std::string d = describe(L.fibers[i]);
        unsigned j = i + 1;
        while (j < L.nthreads && describe(L.fibers[j]) == d) j++;
        if (++ranges > 24) {
            out += "; …";
            break;
        }
        if (!out.empty()) out += "; ";
        out += j - i == 1 ? format("thread %u: ", i) : format("threads %u-%u: ", i, j - 1);
        out += d;
        i = j;
    }
    return out + " (threads by linear index x + y·bx + z·bx·by)";
}

void set_error(std::string message) {
    if (L.failed) return;
    L.failed = true;
    L.error = std::move(message);
}

// ---- ordering -----------------------------------------------------------------------------------------
uint64_t splitmix(uint64_t& s) {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void make_order() {
    unsigned n = L.nthreads;
    L.order.resize(n);
    for (unsigned i = 0; i < n; i++) L.order[i] = g_order == REVERSE ? n - 1 - i : i;
    if (g_order == SHUFFLED) {
        uint64_t s = g_seed ^ (L.block_linear * 0x632be59bd9b4e019ull) ^ (L.phase * 0x8cb92ba72f3d8dd7ull);
        for (unsigned i = n - 1; i > 0; i--) std::swap(L.order[i], L.order[splitmix(s) % (i + 1)]);
    }
}

// ---- warp collectives ---------------------------------------------------------------------------------
Fiber& lane_fiber(const Fiber& f, unsigned lane) { return L.fibers[(f.linear & ~31u) + lane]; }

// A collective is one group of lanes waiting in the same operation with the same mask (they may
// come from different call sites, as sm_70+ allows); it runs once every lane of the mask that has
// not exited waits in it. Lanes that wait in different ones for each other end as a deadlock report.
bool group_ready(const Warp& w, unsigned lane, unsigned part) {
    for (unsigned l = 0; l < 32; l++)
        if ((part >> l & 1) && (!(w.arrived >> l & 1) || w.mask[l] != w.mask[lane] || w.op[l] != w.op[lane]))
            return false;
    return true;
}

// Runs the collective of the group that lane `first` belongs to; the caller is a fiber of the warp.
void complete(Warp& w, unsigned first, unsigned part, const Fiber& caller) {
    Fiber& lead = lane_fiber(caller, first);
    int r = w.op[first](w.calls, part, w.mask[first]);
    if (r == -2)
        fail("%s at %s:%d needs all 32 lanes of the warp (mask 0x%08x, lanes that take part 0x%08x)", lead.what,
             lead.file, lead.line, w.mask[first], part);
    if (r >= 0) {
        unsigned lane = (unsigned)r >> 8, src = r & 255;
        fail("%s at %s:%d: lane %u reads lane %u, which %s (mask 0x%08x)", lead.what, lead.file, lead.line, lane, src,
             (w.mask[first] >> src & 1) ? "has exited" : "is not in the mask", w.mask[first]);
    }
    w.arrived &= ~part;
    for (unsigned l = 0; l < 32; l++)
        if (part >> l & 1) {
            Fiber& f = lane_fiber(caller, l);
            if (f.state == AT_WARP) f.state = RUNNABLE;
        }
    progressed();
}

// Completes every group whose non-exited lanes have all arrived (after a lane exits).
void complete_ready(Warp& w, const Fiber& caller) {
    for (bool again = true; again;) {
        again = false;
        for (unsigned l = 0; l < 32; l++) {
            if (!(w.arrived >> l & 1)) continue;
            unsigned part = w.mask[l] & ~w.exited;
            if (group_ready(w, l, part)) {
                complete(w, l, part, caller);
                again = true;
                break;
            }
        }
    }
}

void flush_copies(Fiber& f, int keep_groups) {
    int done = 0;
    for (PendingCopy& c : f.copies) {
        if (c.group >= f.committed - keep_groups) continue;
        memcpy(c.dst, c.src, c.src_bytes);
        if (c.bytes > c.src_bytes) memset((char*)c.dst + c.src_bytes, 0, c.bytes - c.src_bytes);
        c.bytes = -1;
        done++;
    }
    if (done) {
        size_t j = 0;
        for (PendingCopy& c : f.copies)
            if (c.bytes >= 0) f.copies[j++] = c;
        f.copies.resize(j);
    }
}

void fiber_main(Fiber* f) {
    L.k->invoke(L.k->fn, L.params);
    // the thread returned from the kernel
    if (!f->copies.empty()) { // the hardware finishes an exited thread's copies
        f->committed++;
        flush_copies(*f, 0);
    }
    f->state = EXITED;
    L.exited++;
    Warp& w = L.warps[f->linear >> 5];
    w.exited |= 1u << (f->linear & 31);
    if (w.arrived) complete_ready(w, *f); // collectives that only waited for lanes that have now exited
    progressed();
    switch_from(*f);
    __builtin_unreachable();
}

// ---- one block ----------------------------------------------------------------------------------------
void poison_shared() {
    char *begin = __start_hg_shared, *end = __stop_hg_shared;
    if (begin && end > begin) memset(begin, 0xff, end - begin);
    if (L.k->shared_begin && L.k->shared_end > L.k->shared_begin)
        memset(L.k->shared_begin, 0xff, L.k->shared_end - L.k->shared_begin);
    if (L.dyn) {
        memset(L.dyn, 0xff, L.dyn_bytes);
        memset(L.dyn + L.dyn_bytes, 0xa5, SMEM_CANARY);
    }
}

bool dynamic_shared_intact() {
    for (size_t i = 0; i < SMEM_CANARY; i++)
        if (L.dyn[L.dyn_bytes + i] != 0xa5) return false;
    return true;
}

// Runs the current block to the end; false when it failed (L.error says why).
bool run_block() {
    unsigned n = L.nthreads;
    for (unsigned i = 0; i < n; i++) {
        Fiber& f = L.fibers[i];
        f.state = RUNNABLE;
        f.copies.clear();
        f.committed = 0;
        init_fiber(f);
    }
    for (unsigned w = 0; w < L.warps.size(); w++) {
        unsigned lanes = n - w * 32 >= 32 ? 32 : n - w * 32;
        L.warps[w].exists = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1;
        L.warps[w].exited = L.warps[w].arrived = 0;
    }
    L.at_barrier = L.exited = 0;
    L.phase = 0;
    uint64_t pass_phase = ~0ull;
    progressed();
    for (;;) {
        if (pass_phase != L.phase) {
            pass_phase = L.phase;
            make_order();
        }
        unsigned first = 0;
        while (first < n && L.fibers[L.order[first]].state != RUNNABLE) first++;
        bool ran = first < n;
        if (ran) {
            L.end_pass = false;
            run_pass(first);
            if (L.failed) return false;
        }
        if (L.exited == n) return true;
        if (!ran) {
            bool barrier = L.at_barrier > 0, exited = L.exited > 0;
            set_error(format("%s: deadlock, no thread can continue: %s%s", block_name().c_str(), thread_states().c_str(),
                             barrier && exited ? ". Every thread of a block must reach each barrier; these exited first"
                             : barrier ? ". Threads wait at a barrier that the others never reach"
                                       : ". A warp collective waits for every lane of its mask that has not exited"));
            return false;
        }
        if (g_fired_seq.load(std::memory_order_relaxed) == L.seq) {
            set_error(format("%s: no progress for %.1f s: threads keep yielding without reaching a barrier (a "
                             "spin-wait on another block? the emulator runs blocks one after another): %s",
                             block_name().c_str(), g_watchdog_seconds.load(), thread_states().c_str()));
            return false;
        }
    }
}

std::string describe_fault(const Fault& fault, const Fiber* f) {
    std::string where = block_name() + (f ? ", " + thread_name(*f) : std::string());
    if (fault.sig == g_watchdog_signal)
        return format("%s: no progress for %.1f s: a thread runs without reaching a barrier or exiting (a spin-wait "
                      "on another block? the emulator runs blocks one after another; or an endless loop)",
                      where.c_str(), g_watchdog_seconds.load());
    uintptr_t addr = (uintptr_t)fault.addr;
    if (fault.sig == SIGFPE) return where + ": arithmetic exception (integer division by zero?)";
    if (fault.sig == SIGILL) return where + ": illegal instruction (__builtin_trap?)";
    int s = stack_guard_hit(addr);
    if (s >= 0)
        return format("%s: fiber stack overflow: the thread needs more than %zu KiB of stack (set HG_EMU_STACK_KB)",
                      where.c_str(), g_stacks.stack / 1024);
    if (fault.sig == SIGSEGV && fault.code == SI_KERNEL)
        return where + ": general protection fault (a misaligned vector access, e.g. a float4 load from an address "
                       "that is not 16-byte aligned?)";
    long long off;
    Allocation* a = nearest_allocation(addr, &off);
    if (a) {
        if (off < 0)
            return format("%s: out-of-bounds access at 0x%lx, %lld bytes before the allocation 0x%lx (%zu bytes)",
                          where.c_str(), (unsigned long)addr, -off, (unsigned long)(uintptr_t)a->user, a->bytes);
        return format("%s: out-of-bounds access at 0x%lx, %lld bytes past the end of the allocation 0x%lx (%zu bytes)",
                      where.c_str(), (unsigned long)addr, off - (long long)a->bytes, (unsigned long)(uintptr_t)a->user,
                      a->bytes);
    }
    if (addr < 65536) return format("%s: null pointer access (address 0x%lx)", where.c_str(), (unsigned long)addr);
    return format("%s: invalid address 0x%lx: not in any live device allocation (a host pointer, freed memory, or "
                  "far out of bounds)", where.c_str(), (unsigned long)addr);
}

} // namespace

// ---- device-side entry points (cuda_emu.h) --------------------------------------------------------------
void fail(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::string m = vformat(fmt, ap);
    va_end(ap);
    Fiber* f = t_cur;
    if (!f) { // not in a kernel: a bug in the emulator itself
        fprintf(stderr, "hintgrpo CUDA emulator: %s\n", m.c_str());
        abort();
    }
    set_error(block_name() + ", " + thread_name(*f) + ": " + m);
    f->state = FAILED;
    hg_fiber_switch(&f->sp, L.sched_sp);
    __builtin_unreachable();
}

void device_assert(const char* expr, const char* file, int line, const char* func) {
    fail("device assert `%s` failed at %s:%d in %s", expr, file, line, func);
}

int block_barrier(const char* what, int op, int value, const char* file, int line) {
    Fiber& f = *t_cur;
    if (L.at_barrier == 0) {
        L.bar_what = what;
        L.bar_file = file;
        L.bar_line = line;
        L.bar_op = op;
        L.bar_acc = op == 2 ? 1 : 0;
    } else if (L.bar_line != line || (L.bar_file != file && strcmp(L.bar_file, file) != 0) ||
               (L.bar_what != what && strcmp(L.bar_what, what) != 0)) {
        fail("reaches %s at %s:%d while other threads wait at %s at %s:%d: threads at different barriers (%s)", what,
             file, line, L.bar_what, L.bar_file, L.bar_line, thread_states().c_str());
    }
    if (op == 1) L.bar_acc += value;
    if (op == 2) L.bar_acc &= value;
    if (op == 3) L.bar_acc |= value;
    f.state = AT_BARRIER;
    f.what = what;
    f.file = file;
    f.line = line;
    if (++L.at_barrier == L.nthreads) { // the last one opens the barrier for everyone
        L.bar_result = L.bar_acc;
        L.at_barrier = 0;
        for (unsigned i = 0; i < L.nthreads; i++) L.fibers[i].state = RUNNABLE;
        L.phase++;
        L.end_pass = true;
        progressed();
    }
    switch_from(f);
    return L.bar_result;
}

void warp_collective(Collective op, const char* what, unsigned mask, const void* in, void* out, int b, int c,
                     const char* file, int line) {
    Fiber& f = *t_cur;
    unsigned lane = f.linear & 31;
    Warp& w = L.warps[f.linear >> 5];
    f.what = what;
    f.file = file;
    f.line = line;
    f.mask = mask;
    if (!(mask >> lane & 1))
        fail("%s at %s:%d: lane %u calls it with mask 0x%08x, which does not contain the lane itself", what, file, line,
             lane, mask);
    if (mask & ~w.exists)
        fail("%s at %s:%d: mask 0x%08x names lanes that do not exist (the block has %u threads)", what, file, line, mask,
             L.nthreads);
    w.calls[lane] = {in, out, b, c};
    w.op[lane] = op;
    w.mask[lane] = mask;
    w.arrived |= 1u << lane;
    unsigned part = mask & ~w.exited;
    if (group_ready(w, lane, part)) {
        complete(w, lane, part, f);
        return;
    }
    f.state = AT_WARP;
    switch_from(f);
}

void* dynamic_shared() { return L.dyn; }

bool is_shared(const void* p, size_t bytes) {
    auto in = [&](const void* lo, size_t n) {
        return lo && (uintptr_t)p >= (uintptr_t)lo && (uintptr_t)p + bytes <= (uintptr_t)lo + n;
    };
    return in(__start_hg_shared, __stop_hg_shared - __start_hg_shared) ||
           in(L.k->shared_begin, L.k->shared_end - L.k->shared_begin) || in(L.dyn, L.dyn_bytes);
}

unsigned active_lanes() {
    const Warp& w = L.warps[t_cur->linear >> 5];
    return w.exists & ~w.exited;
}

void yield() {
    switch_from(*t_cur); // stays runnable: runs again in the next pass
}

void cp_async(void* dst, const void* src, int bytes, int src_bytes) {
    Fiber& f = *t_cur;
    if (src_bytes < 0 || src_bytes > bytes) fail("cp.async: %d source bytes for a %d-byte copy", src_bytes, bytes);
    if ((uintptr_t)dst % bytes || (src_bytes && (uintptr_t)src % bytes))
        fail("cp.async of %d bytes: misaligned address (shared 0x%lx, global 0x%lx)", bytes, (unsigned long)(uintptr_t)dst,
             (unsigned long)(uintptr_t)src);
    f.copies.push_back({dst, src, bytes, src_bytes, f.committed});
}

void cp_async_commit() { t_cur->committed++; }

void cp_async_wait(int pending) { flush_copies(*t_cur, pending); }

// ---- host side -------------------------------------------------------------------------------------------
void set_order(int order, uint64_t seed) {
    if (order < FORWARD || order > SHUFFLED) throw EmuError(format("unknown thread order %d", order));
    g_order = order;
    g_seed = seed;
}

void set_watchdog(double seconds) {
    if (!(seconds > 0)) throw EmuError("the watchdog needs a positive number of seconds");
    g_watchdog_seconds.store(seconds);
}

void launch(int index, const unsigned grid[3], const unsigned block[3], size_t shared_bytes, const uint64_t* slots,
            const char* kinds, int nargs) {
    if (index < 0 || index >= kernel_count()) throw EmuError(format("no kernel with index %d", index));
    const KernelEntry& k = kernel(index);
    auto error = [&](const std::string& m) { return EmuError("kernel " + std::string(k.name) + ": " + m); };
    uint64_t threads = (uint64_t)block[0] * block[1] * block[2];
    if (threads == 0 || threads > MAX_THREADS || block[2] > 64)
        throw error(format("block (%u,%u,%u) is not a CUDA block shape (at most 1024 threads, z at most 64)", block[0],
                           block[1], block[2]));
    if (grid[0] == 0 || grid[1] == 0 || grid[2] == 0 || grid[0] > 0x7fffffffu || grid[1] > 65535 || grid[2] > 65535)
        throw error(format("grid (%u,%u,%u) is not a CUDA grid shape", grid[0], grid[1], grid[2]));
    if (shared_bytes > MAX_DYNAMIC_SHARED)
        throw error(format("%zu bytes of dynamic shared memory: more than any GPU of the fatbin has (%zu)", shared_bytes,
                           MAX_DYNAMIC_SHARED));

    // Arguments: count, Java types against the parameter types, pointers into live allocations.
    int nparams = (int)strlen(k.sig);
    if (nargs != nparams) throw error(format("takes %d arguments, got %d", nparams, nargs));
    void* params[64];
    uint64_t values[64];
    Allocation* touched[64];
    int ntouched = 0;
    if (nargs > 64) throw error("more than 64 parameters");
    static const char* java_names[] = {"Long", "Integer", "Float"};
    for (int i = 0; i < nargs; i++) {
        char want = k.sig[i] == 'p' || k.sig[i] == 'l' ? 'L' : k.sig[i] == 'i' ? 'I' : k.sig[i] == 'f' ? 'F' : '?';
        if (want == '?')
            throw error(format("parameter %d has a type (%s) that launches from Java cannot pass", i,
                               k.sig[i] == 'd' ? "double" : "a struct or other non-scalar"));
        if (kinds[i] != want)
            throw error(format("argument %d is a %s, but the parameter is %s (wants a %s)", i,
                               kinds[i] == 'L' ? java_names[0] : kinds[i] == 'I' ? java_names[1] : java_names[2],
                               k.sig[i] == 'p' ? "a pointer" : k.sig[i] == 'l' ? "a 64-bit integer"
                               : k.sig[i] == 'i' ? "a 32-bit integer" : "a float",
                               want == 'L' ? java_names[0] : want == 'I' ? java_names[1] : java_names[2]));
        values[i] = slots[i];
        params[i] = &values[i];
        if (k.sig[i] == 'p' && slots[i] != 0) {
            Allocation* a = find_allocation(slots[i], 0);
            if (!a) {
                long long off;
                Allocation* near = nearest_allocation(slots[i], &off);
                throw error(near ? format("pointer argument %d (0x%lx) lies outside its allocation 0x%lx of %zu bytes "
                                          "(offset %lld)", i, (unsigned long)slots[i],
                                          (unsigned long)(uintptr_t)near->user, near->bytes, off)
                                 : format("pointer argument %d (0x%lx) is not a device address", i,
                                          (unsigned long)slots[i]));
            }
            bool seen = false;
            for (int j = 0; j < ntouched; j++) seen |= touched[j] == a;
            if (!seen) touched[ntouched++] = a;
            a->last_kernel = k.name;
        }
    }

    install_signals_once();
    install_altstack_once();
    reserve_stacks();
    ready_stacks((unsigned)threads);
    L.k = &k;
    L.params = params;
    L.nthreads = (unsigned)threads;
    if (L.fibers.size() < threads) L.fibers.resize(MAX_THREADS);
    for (unsigned i = 0, x = 0, y = 0, z = 0; i < threads; i++) {
        L.fibers[i].linear = i;
        L.fibers[i].tid = {x, y, z};
        if (++x == block[0]) {
            x = 0;
            if (++y == block[1]) y = 0, z++;
        }
    }
    L.warps.resize((threads + 31) / 32);
    if (shared_bytes + SMEM_CANARY > L.dyn_capacity) {
        free(L.dyn);
        L.dyn_capacity = shared_bytes + SMEM_CANARY;
        L.dyn = static_cast<uint8_t*>(aligned_alloc(4096, (L.dyn_capacity + 4095) / 4096 * 4096));
    }
    L.dyn_bytes = shared_bytes;
    L.failed = false;
    L.error.clear();
    blockDim = dim3(block[0], block[1], block[2]);
    gridDim = dim3(grid[0], grid[1], grid[2]);
    static uint64_t seq = 0;
    L.seq = ++seq;
    g_launch_thread = pthread_self();
    g_active_seq.store(L.seq);

    sigjmp_buf jump;
    t_jmp = &jump;
    if (sigsetjmp(jump, 0) == 0) {
        for (unsigned z = 0; z < grid[2] && !L.failed; z++)
            for (unsigned y = 0; y < grid[1] && !L.failed; y++)
                for (unsigned x = 0; x < grid[0] && !L.failed; x++) {
                    blockIdx = {x, y, z};
                    L.block_linear = ((uint64_t)z * grid[1] + y) * grid[0] + x;
                    poison_shared();
                    if (run_block() && !dynamic_shared_intact())
                        set_error(format("%s wrote past the end of its %zu bytes of dynamic shared memory",
                                         block_name().c_str(), shared_bytes));
                }
    } else { // a fault or the watchdog inside a fiber
        t_in_fiber = false;
        Fiber* f = t_cur;
        t_cur = nullptr;
        sigset_t unblock;
        sigemptyset(&unblock);
        sigaddset(&unblock, t_fault.sig);
        pthread_sigmask(SIG_UNBLOCK, &unblock, nullptr);
        L.failed = false;
        set_error(describe_fault(t_fault, f));
    }
    t_jmp = nullptr;
    g_active_seq.store(0);
    if (L.failed) throw error(L.error);
    for (int i = 0; i < ntouched; i++) {
        std::string damage = check_guards(*touched[i]);
        if (!damage.empty()) throw error("out-of-bounds write: " + damage);
    }
}

} // namespace hg_emu

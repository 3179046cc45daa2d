// Emulated device memory: each allocation is its own mapping, laid out as
//
//   [PROT_NONE 64 KiB][head guard bytes | user bytes (256-aligned) | tail guard bytes][PROT_NONE 64 KiB]
//
// The guard bytes hold a pattern that launches check for the allocations they were given (and
// synchronize/free check for all), so a store a little out of bounds is reported with the kernel's
// name; an access past the guard bytes hits a PROT_NONE region and faults at once (runtime.cpp turns
// that into an error naming the thread). The PROT_NONE regions cost address space only. Fresh user bytes hold 0xff (NaN as float, -1 as int), as
// uninitialised device memory is garbage too.
#include "emu.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

namespace hg_emu {
namespace {

constexpr uint8_t GUARD = 0xa5;
constexpr uint8_t POISON = 0xff;
constexpr size_t ALIGN = 256;     // cudaMalloc's alignment
constexpr size_t MIN_GUARD = 256; // guard bytes on each side, at least
constexpr size_t NO_ACCESS = 64 * 1024; // PROT_NONE bytes on each side

std::map<uintptr_t, Allocation> allocations; // by user address
size_t in_use = 0;
size_t limit = size_t(16) << 30; // the emulator's "device memory": a budget, not a reservation

size_t page_size() {
    static const size_t p = (size_t)sysconf(_SC_PAGESIZE);
    return p;
}

uint8_t* data_begin(const Allocation& a) { return a.map + NO_ACCESS; }
uint8_t* data_end(const Allocation& a) { return a.map + a.map_bytes - NO_ACCESS; }

// Where the guard bytes differ from the pattern: [first, last] offsets in the range, or false.
bool corrupted(const uint8_t* p, size_t n, size_t* first, size_t* last) {
    static uint8_t pattern[8192];
    static bool filled = (memset(pattern, GUARD, sizeof pattern), true);
    (void)filled;
    bool bad = false;
    for (size_t off = 0; off < n && !bad; off += sizeof pattern) {
        size_t len = n - off < sizeof pattern ? n - off : sizeof pattern;
        bad = memcmp(p + off, pattern, len) != 0;
    }
    if (!bad) return false;
    size_t i = 0, j = n;
    while (p[i] == GUARD) i++;
    while (p[j - 1] == GUARD) j--;
    *first = i;
    *last = j - 1;
    return true;
}

} // namespace

void set_budget(size_t bytes) { limit = bytes; }
size_t budget() { return limit; }
size_t bytes_in_use() { return in_use; }

uintptr_t device_malloc(size_t bytes) {
    if (bytes > limit - in_use)
        throw EmuError(format("device allocation of %zu bytes fails: %zu of the emulator's %zu bytes are in use",
                              bytes, in_use, limit));
    size_t pg = page_size();
    size_t data = (bytes + 2 * MIN_GUARD + ALIGN + pg - 1) / pg * pg;
    size_t total = data + 2 * NO_ACCESS;
    void* m = mmap(nullptr, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) throw EmuError(format("device allocation of %zu bytes fails: mmap: %s", bytes, strerror(errno)));
    Allocation a{};
    a.map = static_cast<uint8_t*>(m);
    a.map_bytes = total;
    if (mprotect(data_begin(a), data, PROT_READ | PROT_WRITE) != 0) {
        munmap(m, total);
        throw EmuError(format("device allocation of %zu bytes fails: mprotect: %s", bytes, strerror(errno)));
    }
    // Place the user bytes at the end, so a small overrun lands in the tail guard and a larger one
    // in the PROT_NONE region right after it.
    uintptr_t end = (uintptr_t)data_end(a);
    a.user = reinterpret_cast<uint8_t*>((end - MIN_GUARD - bytes) / ALIGN * ALIGN);
    a.bytes = bytes;
    memset(data_begin(a), GUARD, a.user - data_begin(a));
    memset(a.user, POISON, bytes);
    memset(a.user + bytes, GUARD, data_end(a) - (a.user + bytes));
    allocations.emplace((uintptr_t)a.user, a);
    in_use += bytes;
    return (uintptr_t)a.user;
}

void device_free(uintptr_t address) {
    auto it = allocations.find(address);
    if (it == allocations.end())
        throw EmuError(format("free of 0x%lx, which is not the start of a live device allocation", (unsigned long)address));
    std::string damage = check_guards(it->second);
    std::string last = it->second.last_kernel;
    in_use -= it->second.bytes;
    munmap(it->second.map, it->second.map_bytes);
    allocations.erase(it);
    if (!damage.empty())
        throw EmuError(format("out-of-bounds write found when freeing 0x%lx: %s%s%s", (unsigned long)address,
                              damage.c_str(), last.empty() ? "" : "; last kernel given this allocation: ", last.c_str()));
}

Allocation* find_allocation(uintptr_t address, size_t bytes) {
    auto it = allocations.upper_bound(address);
    if (it == allocations.begin()) return nullptr;
    --it;
    Allocation& a = it->second;
    uintptr_t u = (uintptr_t)a.user;
    return address >= u && address - u <= a.bytes && bytes <= a.bytes - (address - u) ? &a : nullptr;
}

Allocation* nearest_allocation(uintptr_t address, long long* offset) {
    auto it = allocations.upper_bound(address);
    for (int k = 0; k < 2; k++) {
        if (k == 1) {
            if (it == allocations.begin()) break;
            --it;
        }
        if (it == allocations.end()) continue;
        Allocation& a = it->second;
        if (address >= (uintptr_t)a.map && address < (uintptr_t)a.map + a.map_bytes) {
            *offset = (long long)(address - (uintptr_t)a.user);
            return &a;
        }
    }
    return nullptr;
}

static Allocation& checked(uintptr_t address, size_t bytes, const char* what) {
    Allocation* a = find_allocation(address, bytes);
    if (a) return *a;
    long long off;
    Allocation* near = nearest_allocation(address, &off);
    if (near)
        throw EmuError(format("%s of %zu bytes at device address 0x%lx runs outside its allocation 0x%lx of %zu bytes "
                              "(it starts at offset %lld)", what, bytes, (unsigned long)address,
                              (unsigned long)(uintptr_t)near->user, near->bytes, off));
    throw EmuError(format("%s of %zu bytes at 0x%lx: not a device address", what, bytes, (unsigned long)address));
}

void copy_to_device(uintptr_t dst, const void* src, size_t bytes) {
    checked(dst, bytes, "copy to the device");
    memcpy(reinterpret_cast<void*>(dst), src, bytes);
}

void copy_from_device(void* dst, uintptr_t src, size_t bytes) {
    checked(src, bytes, "copy from the device");
    memcpy(dst, reinterpret_cast<const void*>(src), bytes);
}

void copy_device(uintptr_t dst, uintptr_t src, size_t bytes) {
    checked(src, bytes, "device-to-device copy from");
    checked(dst, bytes, "device-to-device copy to");
    memmove(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), bytes);
}

std::string check_guards(Allocation& a) {
    std::string r;
    size_t first, last;
    uint8_t* head = data_begin(a);
    size_t head_bytes = a.user - head;
    if (corrupted(head, head_bytes, &first, &last)) {
        r = format("bytes %lld to %lld before the start of allocation 0x%lx (%zu bytes) were overwritten",
                   (long long)first - (long long)head_bytes, (long long)last - (long long)head_bytes,
                   (unsigned long)(uintptr_t)a.user, a.bytes);
        memset(head, GUARD, head_bytes);
    }
    uint8_t* tail = a.user + a.bytes;
    size_t tail_bytes = data_end(a) - tail;
    if (corrupted(tail, tail_bytes, &first, &last)) {
        if (!r.empty()) r += "; ";
        r += format("bytes %zu to %zu past the end of allocation 0x%lx (%zu bytes) were overwritten", first, last,
                    (unsigned long)(uintptr_t)a.user, a.bytes);
        memset(tail, GUARD, tail_bytes);
    }
    return r;
}

void check_all_guards(const char* when) {
    std::string all;
    for (auto& [address, a] : allocations) {
        std::string damage = check_guards(a);
        if (damage.empty()) continue;
        if (!all.empty()) all += "; ";
        all += damage;
        if (!a.last_kernel.empty()) all += " (last kernel given this allocation: " + a.last_kernel + ")";
    }
    if (!all.empty()) throw EmuError(format("out-of-bounds write found %s: %s", when, all.c_str()));
}

} // namespace hg_emu

// The CUDA emulator's host side: the kernel registry, launches and device memory, as used by the
// JNI bridge (jni.cpp) and by the generated registry translation units (native/build.sh).
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace hg_emu {

// A failure the Java side sees as an EmuException carrying this message.
struct EmuError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// ---- the kernel registry ---------------------------------------------------------------------------
// sig has one letter per parameter: p pointer, i integer of at most 4 bytes, l 8-byte integer,
// f float, d double, ? a type that cannot come from Java.
struct KernelEntry {
    const char* name;
    void (*fn)();
    void (*invoke)(void (*fn)(), void** params);
    const char* sig;
    char* shared_begin; // the static __shared__ variables of the kernel's source file
    char* shared_end;
};

template <class T>
constexpr char param_kind() {
    if constexpr (std::is_pointer_v<T>) return 'p';
    else if constexpr (std::is_same_v<T, float>) return 'f';
    else if constexpr (std::is_same_v<T, double>) return 'd';
    else if constexpr ((std::is_integral_v<T> || std::is_enum_v<T>) && sizeof(T) <= 4) return 'i';
    else if constexpr (std::is_integral_v<T> && sizeof(T) == 8) return 'l';
    else return '?';
}

template <class... A>
struct Signature {
    static constexpr char str[] = {param_kind<A>()..., '\0'};
};

// Calls fn with each parameter read from its slot (cuLaunchKernel's void** kernelParams).
template <class... A, size_t... I>
void invoke_with(void (*fn)(A...), void** params, std::index_sequence<I...>) {
    fn(*static_cast<std::remove_cv_t<A>*>(params[I])...);
}

template <class... A>
void invoke(void (*fn)(), void** params) {
    invoke_with(reinterpret_cast<void (*)(A...)>(fn), params, std::index_sequence_for<A...>{});
}

template <class... A>
KernelEntry entry(const char* name, void (*fn)(A...), char* shared_begin, char* shared_end) {
    return {name, reinterpret_cast<void (*)()>(fn), &invoke<A...>, Signature<A...>::str, shared_begin, shared_end};
}

// Static objects of the generated translation units register their kernels at load time.
struct Registrar {
    Registrar(const KernelEntry* entries, int n);
};

int kernel_count();
const KernelEntry& kernel(int index);
int find_kernel(const char* name); // -1 when unknown

// ---- launches --------------------------------------------------------------------------------------
// slots[i] holds argument i in its low bytes; kinds[i] is 'L' (Long), 'I' (Integer) or 'F' (Float).
void launch(int kernel, const unsigned grid[3], const unsigned block[3], size_t shared_bytes,
            const uint64_t* slots, const char* kinds, int nargs);

enum Order { FORWARD = 0, REVERSE = 1, SHUFFLED = 2 };
void set_order(int order, uint64_t seed);
void set_watchdog(double seconds);

// ---- device memory (memory.cpp): host memory with guard zones --------------------------------------
struct Allocation {
    uint8_t* user;
    size_t bytes;
    uint8_t* map;
    size_t map_bytes;
    std::string last_kernel; // the last kernel given a pointer into it, for reports
};

uintptr_t device_malloc(size_t bytes);
void device_free(uintptr_t address);
void set_budget(size_t bytes);
size_t bytes_in_use();
size_t budget();
// The allocation holding [address, address + bytes), or null.
Allocation* find_allocation(uintptr_t address, size_t bytes);
// The allocation whose user bytes or guard pages contain address, or null; *offset = address − user.
Allocation* nearest_allocation(uintptr_t address, long long* offset);
void copy_to_device(uintptr_t dst, const void* src, size_t bytes);
void copy_from_device(void* dst, uintptr_t src, size_t bytes);
void copy_device(uintptr_t dst, uintptr_t src, size_t bytes);
// Empty when the guard bytes around a are intact; else what was overwritten (and the guards are restored).
std::string check_guards(Allocation& a);
// Checks every live allocation; throws EmuError naming what was found.
void check_all_guards(const char* when);

} // namespace hg_emu

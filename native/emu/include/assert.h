// The emulator's <assert.h> (found before the system's for kernel sources): a failed device assert
// fails the launch, also when a kernel includes <assert.h> after the force-included cuda_emu.h.
// No include guard, like the standard header.
#undef assert
#ifdef NDEBUG
#define assert(e) ((void)0)
#else
#define assert(e) ((e) ? (void)0 : hg_emu::device_assert(#e, __FILE__, __LINE__, __func__))
#endif

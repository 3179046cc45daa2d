# Fiber context switch for the CUDA emulator (x86-64 System V).
#
# hg_fiber_switch(void** save_sp, void* next_sp): pushes the callee-saved registers on the current
# stack, stores the stack pointer in *save_sp, switches to next_sp and pops that fiber's registers.
# Everything else is caller-saved, so this is a whole switch (~10 ns; swapcontext also saves the
# signal mask with a system call each time). MXCSR and the x87 control word are shared: kernels
# do not change rounding modes.
#
# A fresh fiber's stack (runtime.cpp, init_fiber) holds r15, r14, r13 = entry function,
# r12 = its argument, rbx, rbp and the return address hg_fiber_start, which calls entry(argument).

        .text
        .globl  hg_fiber_switch
        .hidden hg_fiber_switch
        .type   hg_fiber_switch, @function
hg_fiber_switch:
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        movq    %rsp, (%rdi)
        movq    %rsi, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        ret
        .size   hg_fiber_switch, .-hg_fiber_switch

        .globl  hg_fiber_start
        .hidden hg_fiber_start
        .type   hg_fiber_start, @function
hg_fiber_start:
        movq    %r12, %rdi
        callq   *%r13
        ud2                             # the entry function never returns
        .size   hg_fiber_start, .-hg_fiber_start

        .section .note.GNU-stack,"",@progbits

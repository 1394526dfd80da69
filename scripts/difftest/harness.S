// Differential-test harness for Linux/aarch64 user mode (run under qemu-aarch64). harness.c copies
// tv_prologue..tv_prologue_end, the case's instructions, and tv_epilogue..tv_epilogue_end into the
// code page and calls it. Both pieces are position independent (absolute addresses built with
// MOVZ/MOVK), so the copies run anywhere.
        .equ STATE, 0x40010000
        .equ SAVE,  0x40011000
        .text
        .global tv_prologue, tv_prologue_end, tv_epilogue, tv_epilogue_end

tv_prologue:
        movz x9, #(SAVE & 0xffff)
        movk x9, #(SAVE >> 16), lsl #16
        stp x19, x20, [x9, #0]
        stp x21, x22, [x9, #16]
        stp x23, x24, [x9, #32]
        stp x25, x26, [x9, #48]
        stp x27, x28, [x9, #64]
        stp x29, x30, [x9, #80]
        mov x10, sp
        str x10, [x9, #96]
        mrs x10, tpidr_el0
        str x10, [x9, #104]
        movz x30, #(STATE & 0xffff)
        movk x30, #(STATE >> 16), lsl #16
        ldr x0, [x30, #248]
        mov sp, x0
        ldr x0, [x30, #256]
        msr nzcv, x0
        ldr x0, [x30, #264]
        msr fpcr, x0
        ldr x0, [x30, #272]
        msr fpsr, x0
        add x0, x30, #288
        ld1 {v0.2d, v1.2d, v2.2d, v3.2d}, [x0], #64
        ld1 {v4.2d, v5.2d, v6.2d, v7.2d}, [x0], #64
        ld1 {v8.2d, v9.2d, v10.2d, v11.2d}, [x0], #64
        ld1 {v12.2d, v13.2d, v14.2d, v15.2d}, [x0], #64
        ld1 {v16.2d, v17.2d, v18.2d, v19.2d}, [x0], #64
        ld1 {v20.2d, v21.2d, v22.2d, v23.2d}, [x0], #64
        ld1 {v24.2d, v25.2d, v26.2d, v27.2d}, [x0], #64
        ld1 {v28.2d, v29.2d, v30.2d, v31.2d}, [x0], #64
        ldp x0, x1, [x30, #0]
        ldp x2, x3, [x30, #16]
        ldp x4, x5, [x30, #32]
        ldp x6, x7, [x30, #48]
        ldp x8, x9, [x30, #64]
        ldp x10, x11, [x30, #80]
        ldp x12, x13, [x30, #96]
        ldp x14, x15, [x30, #112]
        ldp x16, x17, [x30, #128]
        ldp x18, x19, [x30, #144]
        ldp x20, x21, [x30, #160]
        ldp x22, x23, [x30, #176]
        ldp x24, x25, [x30, #192]
        ldp x26, x27, [x30, #208]
        ldp x28, x29, [x30, #224]
        ldr x30, [x30, #240]
tv_prologue_end:

tv_epilogue:
        msr tpidr_el0, x30
        movz x30, #(STATE & 0xffff)
        movk x30, #(STATE >> 16), lsl #16
        stp x0, x1, [x30, #0]
        stp x2, x3, [x30, #16]
        stp x4, x5, [x30, #32]
        stp x6, x7, [x30, #48]
        stp x8, x9, [x30, #64]
        stp x10, x11, [x30, #80]
        stp x12, x13, [x30, #96]
        stp x14, x15, [x30, #112]
        stp x16, x17, [x30, #128]
        stp x18, x19, [x30, #144]
        stp x20, x21, [x30, #160]
        stp x22, x23, [x30, #176]
        stp x24, x25, [x30, #192]
        stp x26, x27, [x30, #208]
        stp x28, x29, [x30, #224]
        mrs x0, tpidr_el0
        str x0, [x30, #240]
        mov x0, sp
        str x0, [x30, #248]
        mrs x0, nzcv
        str x0, [x30, #256]
        mrs x0, fpcr
        str x0, [x30, #264]
        mrs x0, fpsr
        str x0, [x30, #272]
        add x0, x30, #288
        st1 {v0.2d, v1.2d, v2.2d, v3.2d}, [x0], #64
        st1 {v4.2d, v5.2d, v6.2d, v7.2d}, [x0], #64
        st1 {v8.2d, v9.2d, v10.2d, v11.2d}, [x0], #64
        st1 {v12.2d, v13.2d, v14.2d, v15.2d}, [x0], #64
        st1 {v16.2d, v17.2d, v18.2d, v19.2d}, [x0], #64
        st1 {v20.2d, v21.2d, v22.2d, v23.2d}, [x0], #64
        st1 {v24.2d, v25.2d, v26.2d, v27.2d}, [x0], #64
        st1 {v28.2d, v29.2d, v30.2d, v31.2d}, [x0], #64
        movz x9, #(SAVE & 0xffff)
        movk x9, #(SAVE >> 16), lsl #16
        ldp x19, x20, [x9, #0]
        ldp x21, x22, [x9, #16]
        ldp x23, x24, [x9, #32]
        ldp x25, x26, [x9, #48]
        ldp x27, x28, [x9, #64]
        ldp x29, x30, [x9, #80]
        ldr x10, [x9, #96]
        mov sp, x10
        ldr x10, [x9, #104]
        msr tpidr_el0, x10
        ret
tv_epilogue_end:
        .section .note.GNU-stack,"",%progbits

/* Differential-test harness (Linux/aarch64 user mode, run under qemu-aarch64 -cpu cortex-a53).
 * Reads cases from stdin, runs each with the given register state, writes the resulting state to
 * stdout. Binary protocol shared with scripts/difftest.ts:
 *   out header: u32 prologue_words
 *   in  case:   u32 n; u32 insn[n]; u8 state[800]; u32 scratch_seed      (n = 0 ends the run)
 *   out result: u32 signo (0 = ran to the end); u32 fault_index; u8 state[800];
 *               u32 ndiff; ndiff x (u32 offset, u32 byte)   scratch bytes that differ from the fill
 * state: x0..x30 (0..247), sp (248), nzcv (256), fpcr (264), fpsr (272), v0..v31 (288..799). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#define CODE 0x40000000UL
#define STATE 0x40010000UL
#define SCRATCH 0x40020000UL
#define SCRATCH_SIZE 0x10000
#define STATE_SIZE 800

extern char tv_prologue[], tv_prologue_end[], tv_epilogue[], tv_epilogue_end[];
static sigjmp_buf env;
static volatile uint32_t fault_signo, fault_index;
static uint8_t fault_state[STATE_SIZE];
static uint32_t test_start_off, ninsn;

static void fill_scratch(uint32_t seed, uint8_t *dst) {
  uint32_t x = seed ? seed : 1;
  for (int i = 0; i < SCRATCH_SIZE; i++) {
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    dst[i] = (uint8_t)(x >> 24);
  }
}

static void on_signal(int sig, siginfo_t *si, void *uc_) {
  (void)si;
  ucontext_t *uc = uc_;
  fault_signo = (uint32_t)sig;
  uint64_t pc = uc->uc_mcontext.pc;
  fault_index = (uint32_t)((pc - (CODE + test_start_off)) / 4);
  memcpy(fault_state, uc->uc_mcontext.regs, 31 * 8);
  memcpy(fault_state + 248, &uc->uc_mcontext.sp, 8);
  uint64_t nzcv = uc->uc_mcontext.pstate & 0xf0000000UL;
  memcpy(fault_state + 256, &nzcv, 8);
  uint8_t *p = (uint8_t *)uc->uc_mcontext.__reserved;
  for (;;) {
    uint32_t magic, size;
    memcpy(&magic, p, 4); memcpy(&size, p + 4, 4);
    if (magic == 0 || size == 0) break;
    if (magic == 0x46508001) {
      uint32_t fpsr, fpcr;
      memcpy(&fpsr, p + 8, 4); memcpy(&fpcr, p + 12, 4);
      uint64_t a = fpcr, b = fpsr;
      memcpy(fault_state + 264, &a, 8); memcpy(fault_state + 272, &b, 8);
      memcpy(fault_state + 288, p + 16, 512);
      break;
    }
    p += size;
  }
  siglongjmp(env, 1);
}

static int read_full(void *buf, size_t n) {
  uint8_t *b = buf;
  while (n) { ssize_t r = read(0, b, n); if (r <= 0) return -1; b += r; n -= (size_t)r; }
  return 0;
}
static void write_full(const void *buf, size_t n) {
  const uint8_t *b = buf;
  while (n) { ssize_t r = write(1, b, n); if (r <= 0) exit(3); b += r; n -= (size_t)r; }
}

int main(void) {
  if (mmap((void *)CODE, 0x10000, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED ||
      mmap((void *)STATE, 0x10000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED ||
      mmap((void *)SCRATCH, SCRATCH_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
    perror("harness: mmap");
    return 2;
  }
  static uint8_t altstack[65536];
  stack_t ss = { .ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0 };
  sigaltstack(&ss, NULL);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_signal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  int sigs[] = { SIGILL, SIGSEGV, SIGBUS, SIGTRAP, SIGFPE };
  for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);

  size_t plen = (size_t)(tv_prologue_end - tv_prologue), elen = (size_t)(tv_epilogue_end - tv_epilogue);
  test_start_off = (uint32_t)plen;
  uint32_t pw = (uint32_t)(plen / 4);
  write_full(&pw, 4);
  static uint8_t fill[SCRATCH_SIZE];
  for (;;) {
    if (read_full(&ninsn, 4)) break;
    if (ninsn == 0 || ninsn > 64) break;
    uint32_t insn[64];
    uint32_t seed;
    if (read_full(insn, ninsn * 4) || read_full((void *)STATE, STATE_SIZE) || read_full(&seed, 4)) break;
    fill_scratch(seed, fill);
    memcpy((void *)SCRATCH, fill, SCRATCH_SIZE);
    uint8_t *code = (uint8_t *)CODE;
    memcpy(code, tv_prologue, plen);
    memcpy(code + plen, insn, ninsn * 4);
    memcpy(code + plen + ninsn * 4, tv_epilogue, elen);
    __builtin___clear_cache((char *)code, (char *)code + plen + ninsn * 4 + elen);
    fault_signo = 0;
    fault_index = 0;
    if (sigsetjmp(env, 1) == 0) {
      ((void (*)(void))CODE)();
    }
    uint32_t hdr[2] = { fault_signo, fault_index };
    write_full(hdr, 8);
    write_full(fault_signo ? fault_state : (uint8_t *)STATE, STATE_SIZE);
    uint32_t nd = 0;
    const uint8_t *s = (const uint8_t *)SCRATCH;
    for (int i = 0; i < SCRATCH_SIZE; i++) nd += s[i] != fill[i];
    write_full(&nd, 4);
    for (int i = 0; i < SCRATCH_SIZE; i++) {
      if (s[i] != fill[i]) { uint32_t pr[2] = { (uint32_t)i, s[i] }; write_full(pr, 8); }
    }
  }
  return 0;
}

/* CPU benchmark workload: freestanding AArch64 program (no libc) that fills an array with a
 * pseudo-random sequence, sorts it with an iterative quicksort + insertion sort, runs an LZ77-style
 * match search over a byte buffer, and prints a checksum with the write system call. The same binary
 * runs under qemu-aarch64 and on typevisor's CPU (bench/cpu.ts handles write/exit). */
typedef unsigned long u64;
typedef unsigned int u32;
typedef unsigned char u8;

#define N 60000
#ifndef ROUNDS
#define ROUNDS 20
#endif
static u32 a[N];
static u8 buf[1 << 16];
u64 stack_mem[8192] __attribute__((aligned(16)));

static long sys3(long n, long a0, long a1, long a2) {
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a0;
  register long x1 __asm__("x1") = a1;
  register long x2 __asm__("x2") = a2;
  __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
  return x0;
}

static void sort(u32 *v, long n) {
  long lo_s[64], hi_s[64];
  int sp = 0;
  lo_s[sp] = 0; hi_s[sp] = n - 1; sp++;
  while (sp) {
    sp--;
    long lo = lo_s[sp], hi = hi_s[sp];
    while (hi - lo > 16) {
      u32 p = v[lo + (hi - lo) / 2];
      long i = lo, j = hi;
      while (i <= j) {
        while (v[i] < p) i++;
        while (v[j] > p) j--;
        if (i <= j) { u32 t = v[i]; v[i] = v[j]; v[j] = t; i++; j--; }
      }
      if (j - lo < hi - i) { lo_s[sp] = i; hi_s[sp] = hi; sp++; hi = j; }
      else { lo_s[sp] = lo; hi_s[sp] = j; sp++; lo = i; }
    }
    for (long i = lo + 1; i <= hi; i++) {
      u32 x = v[i]; long j = i - 1;
      while (j >= lo && v[j] > x) { v[j + 1] = v[j]; j--; }
      v[j + 1] = x;
    }
  }
}

static u64 lz_matches(const u8 *s, long n) {
  static int head[4096];
  for (int i = 0; i < 4096; i++) head[i] = -1;
  u64 total = 0;
  for (long i = 0; i + 3 < n; i++) {
    u32 h = ((u32)s[i] * 2654435761u ^ (u32)s[i + 1] * 40503u ^ s[i + 2]) & 4095;
    int cand = head[h];
    head[h] = (int)i;
    if (cand >= 0) {
      long len = 0;
      while (i + len < n && len < 258 && s[cand + len] == s[i + len]) len++;
      total += (u64)len;
    }
  }
  return total;
}

static void put_hex(u64 v) {
  char out[20];
  for (int i = 0; i < 16; i++) out[i] = "0123456789abcdef"[(v >> (60 - 4 * i)) & 15];
  out[16] = '\n';
  sys3(64, 1, (long)out, 17);
}

void main_c(void) {
  u32 x = 12345;
  u64 sum = 0;
  for (int round = 0; round < ROUNDS; round++) {
    for (long i = 0; i < N; i++) { x ^= x << 13; x ^= x >> 17; x ^= x << 5; a[i] = x % 1000003u; }
    sort(a, N);
    for (long i = 0; i < N; i++) sum = sum * 31 + a[i];
    for (long i = 0; i < (long)sizeof buf; i++) { x ^= x << 13; x ^= x >> 17; x ^= x << 5; buf[i] = (u8)("abcdefgh"[x & 7]); }
    sum += lz_matches(buf, sizeof buf);
  }
  put_hex(sum);
  sys3(93, 0, 0, 0);
  for (;;) {}
}

__asm__(".global _start\n_start:\n adrp x0, stack_mem + 65536\n add x0, x0, :lo12:stack_mem + 65536\n"
        " mov sp, x0\n bl main_c\n b .\n");

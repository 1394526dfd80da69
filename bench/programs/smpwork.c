/* CPU-bound guest workload for `npm run bench -- smp` (bench/smp.ts), built static with
 * aarch64-linux-gnu-gcc at bench time and run in the Linux guest:
 *
 *   smpwork JOBS ITERS
 *
 * forks JOBS processes that each run ITERS rounds of an integer loop (a 64-bit LCG whose values
 * index, read and update a 16 KiB table: ALU work, loads and stores, no system calls), waits for
 * all of them and prints "@@smpwork=JOBS CPUS SECONDS" (CPUS: the CPUs online; SECONDS: from before
 * the first fork to after the last exit, CLOCK_MONOTONIC) and each job's checksum, which is the same
 * for every job and run ("@@smpsum=HEX"). Exit status 0 when every job exited with 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TABLE 4096

static unsigned int table[TABLE];

static unsigned long work(unsigned long n) {
  unsigned long x = 0x9e3779b97f4a7c15UL, s = 0;
  for (unsigned i = 0; i < TABLE; i++) table[i] = i * 2654435761u;
  for (unsigned long i = 0; i < n; i++) {
    x = x * 6364136223846793005UL + 1442695040888963407UL;
    unsigned j = (unsigned)(x >> 52);
    s += table[j] ^ (s << 3) ^ i;
    if ((x & 0x700) == 0) table[(j * 7) & (TABLE - 1)] ^= (unsigned)s;
  }
  return s;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: smpwork JOBS ITERS\n");
    return 2;
  }
  int jobs = atoi(argv[1]);
  unsigned long iters = strtoul(argv[2], NULL, 0);
  int fds[2];
  if (pipe(fds) != 0) return 1;
  double t0 = now();
  for (int j = 0; j < jobs; j++) {
    pid_t p = fork();
    if (p < 0) return 1;
    if (p == 0) {
      unsigned long s = work(iters);
      if (write(fds[1], &s, sizeof s) != sizeof s) _exit(1);
      _exit(0);
    }
  }
  int ok = 1;
  for (int j = 0; j < jobs; j++) {
    int st;
    if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) ok = 0;
  }
  double t1 = now();
  close(fds[1]);
  printf("@@smpwork=%d %ld %.3f\n", jobs, sysconf(_SC_NPROCESSORS_ONLN), t1 - t0);
  unsigned long s;
  while (read(fds[0], &s, sizeof s) == sizeof s) printf("@@smpsum=%016lx\n", s);
  return ok ? 0 : 1;
}

/* SMP checks for a Linux guest on several vCPUs (test/smp-guest.test.ts), built static with
 * aarch64-linux-gnu-gcc -O2 -pthread -march=armv8-a -mno-outline-atomics at test time: armv8.0 has
 * no LSE atomics, so every atomic read-modify-write below is an inline LDAXR/STLXR loop, and the
 * acquire/release accesses are LDAR/STLR. Each thread is pinned to its own CPU (thread i on CPU
 * i mod the online count) so that the vCPUs really share the data. Results go to stdout as
 * "@@key=value" lines; the exit status is 0 only when every check passed.
 *
 *   smp-guest [N [MP_ROUNDS [PINGPONG_ROUNDS]]]
 *
 * - counters: 4 threads each add 1 to one counter N times with atomic_fetch_add (exclusives) and to
 *   another N times inside a pthread mutex; both must end at 4*N.
 * - message passing, streamed: a writer stores round i into 4 data words, then i into a flag (a
 *   store-release; in the second variant plain stores with a DMB between data and flag, and a DMB
 *   after the reader's flag load); a reader loads the flag (acquire), then the data words, and counts
 *   a stale read whenever a data word is older than the flag it saw. MP_ROUNDS rounds each.
 * - ping-pong: two threads hand a 4-word message back and forth PINGPONG_ROUNDS times (data, then a
 *   release store of the turn; the other side spins on an acquire load of the turn, then checks
 *   every word is exactly this round's).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define THREADS 4
#define WORDS 4

static long n_iter = 200000;
static long mp_rounds = 200000;
static long pp_rounds = 300;
static long ncpus = 1;

static void pin(int i) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(i % ncpus, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- counters ---- */

static atomic_long atomic_counter;
static long locked_counter;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t start;

static void *count(void *arg) {
  pin((int)(long)arg);
  pthread_barrier_wait(&start);
  for (long i = 0; i < n_iter; i++) {
    atomic_fetch_add(&atomic_counter, 1);
    pthread_mutex_lock(&lock);
    locked_counter++;
    pthread_mutex_unlock(&lock);
  }
  return NULL;
}

/* ---- message passing, streamed ---- */

static atomic_long data[WORDS];
static atomic_long flag;
static int use_dmb;
static long mp_checks, mp_stale;

static void *mp_writer(void *arg) {
  pin((int)(long)arg);
  pthread_barrier_wait(&start);
  for (long i = 1; i <= mp_rounds; i++) {
    for (int k = 0; k < WORDS; k++) atomic_store_explicit(&data[k], i, memory_order_relaxed);
    if (use_dmb) {
      __sync_synchronize(); /* dmb ish */
      atomic_store_explicit(&flag, i, memory_order_relaxed);
    } else {
      atomic_store_explicit(&flag, i, memory_order_release); /* stlr */
    }
  }
  return NULL;
}

static void *mp_reader(void *arg) {
  pin((int)(long)arg);
  pthread_barrier_wait(&start);
  long f;
  do {
    if (use_dmb) {
      f = atomic_load_explicit(&flag, memory_order_relaxed);
      __sync_synchronize(); /* dmb ish */
    } else {
      f = atomic_load_explicit(&flag, memory_order_acquire); /* ldar */
    }
    for (int k = 0; k < WORDS; k++)
      if (atomic_load_explicit(&data[k], memory_order_relaxed) < f) mp_stale++;
    mp_checks++;
  } while (f < mp_rounds);
  return NULL;
}

/* ---- ping-pong ---- */

static atomic_long turn; /* 2*r + 1: the message of round r is for the second thread; 2*r + 2: its answer */
static atomic_long msg[WORDS];
static long pp_stale;

static void *pingpong(void *arg) {
  int side = (int)(long)arg; /* 0 sends on odd turns, 1 answers on even turns */
  pin(side);
  pthread_barrier_wait(&start);
  for (long r = 0; r < pp_rounds; r++) {
    long mine = 2 * r + 1 + side;
    if (side == 1 || r > 0) {
      /* wait for the other side's message: turn mine - 1 */
      while (atomic_load_explicit(&turn, memory_order_acquire) != mine - 1) {
      }
      long want = mine - 1;
      for (int k = 0; k < WORDS; k++)
        if (atomic_load_explicit(&msg[k], memory_order_relaxed) != want * 10 + k) pp_stale++;
    }
    for (int k = 0; k < WORDS; k++) atomic_store_explicit(&msg[k], mine * 10 + k, memory_order_relaxed);
    atomic_store_explicit(&turn, mine, memory_order_release);
  }
  return NULL;
}

static void run(void *(*f[])(void *), int n) {
  pthread_t t[THREADS];
  pthread_barrier_init(&start, NULL, (unsigned)n);
  for (int i = 0; i < n; i++) pthread_create(&t[i], NULL, f[i], (void *)(long)i);
  for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
  pthread_barrier_destroy(&start);
}

int main(int argc, char **argv) {
  if (argc > 1) n_iter = atol(argv[1]);
  if (argc > 2) mp_rounds = atol(argv[2]);
  if (argc > 3) pp_rounds = atol(argv[3]);
  ncpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (ncpus < 1) ncpus = 1;
  int ok = 1;
  printf("@@cpus=%ld\n", ncpus);

  double t0 = now();
  void *(*counters[THREADS])(void *) = {count, count, count, count};
  run(counters, THREADS);
  long expected = THREADS * n_iter;
  long a = atomic_load(&atomic_counter);
  printf("@@atomic=%ld\n@@locked=%ld\n@@expected=%ld\n", a, locked_counter, expected);
  ok &= a == expected && locked_counter == expected;

  double t1 = now();
  long stale = 0, checks = 0;
  for (use_dmb = 0; use_dmb < 2; use_dmb++) {
    atomic_store(&flag, 0);
    for (int k = 0; k < WORDS; k++) atomic_store(&data[k], 0);
    mp_checks = mp_stale = 0;
    void *(*mp[2])(void *) = {mp_writer, mp_reader};
    run(mp, 2);
    printf("@@mp_%s=checks %ld stale %ld\n", use_dmb ? "dmb" : "acqrel", mp_checks, mp_stale);
    stale += mp_stale;
    checks += mp_checks;
  }
  printf("@@mp_stale=%ld\n", stale);
  ok &= stale == 0;

  double t2 = now();
  void *(*pp[2])(void *) = {pingpong, pingpong};
  run(pp, 2);
  printf("@@pp_rounds=%ld\n@@pp_stale=%ld\n", pp_rounds, pp_stale);
  ok &= pp_stale == 0 && atomic_load(&turn) == 2 * pp_rounds;

  double t3 = now();
  printf("@@seconds=counters %.2f mp %.2f pingpong %.2f\n", t1 - t0, t2 - t1, t3 - t2);
  printf("@@smp_ok=%d\n", ok);
  fflush(stdout);
  return ok ? 0 : 1;
}

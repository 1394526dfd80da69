/* The C reference for bench/kvm-exits.ts: the same KVM_RUN loop typevisor runs, written directly
 * against the KVM API. Usage: exitloop HEXCODE COUNT. Loads HEXCODE (a real-mode guest) at 0x1000,
 * runs it, counts port-I/O exits to port 0x10 until the guest writes port 0x501, prints
 * "exits N seconds S rate R". */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
	perror(what);
	exit(1);
}

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: exitloop HEXCODE COUNT\n");
		return 2;
	}
	const char *hex = argv[1];
	long want = atol(argv[2]);
	size_t mem_size = 2 << 20;
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) die("open /dev/kvm");
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) die("KVM_CREATE_VM");
	if (ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000) < 0) die("KVM_SET_TSS_ADDR");
	unsigned char *mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED) die("mmap");
	size_t n = strlen(hex) / 2;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		mem[0x1000 + i] = (unsigned char)v;
	}
	struct kvm_userspace_memory_region region = {
		.slot = 0, .guest_phys_addr = 0, .memory_size = mem_size, .userspace_addr = (unsigned long)mem};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) die("KVM_SET_USER_MEMORY_REGION");
	int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0) die("KVM_CREATE_VCPU");
	int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	struct kvm_run *run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED) die("mmap kvm_run");
	struct kvm_sregs sregs;
	if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) die("KVM_GET_SREGS");
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) die("KVM_SET_SREGS");
	struct kvm_regs regs;
	memset(&regs, 0, sizeof regs);
	regs.rip = 0x1000;
	regs.rflags = 2;
	if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) die("KVM_SET_REGS");

	long exits = 0;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) die("KVM_RUN");
		if (run->exit_reason != KVM_EXIT_IO) {
			fprintf(stderr, "unexpected exit %u\n", run->exit_reason);
			return 1;
		}
		if (run->io.port == 0x10) {
			exits++;
			continue;
		}
		if (run->io.port == 0x501) break;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (exits != want) {
		fprintf(stderr, "counted %ld exits, expected %ld\n", exits, want);
		return 1;
	}
	printf("exits %ld seconds %.6f rate %.0f\n", exits, s, exits / s);
	munmap(run, run_size);
	munmap(mem, mem_size);
	close(vcpu);
	close(vm);
	close(kvm);
	return 0;
}

/*
 * pool.c — the worker threads behind the batch calls.
 *
 * A batch call splits its rows into tasks and hands them to sw__parallel.
 * The threads are kept on the index and reused, not started per call:
 * starting and joining a thread cost 94 us per thread on the 2-core test
 * machine (four or five searches' worth, paid per thread per call),
 * against 12 us for waking a pooled worker and waiting for it.
 * The pool belongs to one index rather than to the process so that the
 * library keeps no global state: sw_free stops and joins the threads, and
 * their bookkeeping goes through the index's allocator.
 *
 * Lifecycle: the first batch call that wants more than one thread creates
 * the pool under ix->pool_lock; a later call that wants more threads starts
 * the missing ones; nothing shrinks until sw__pool_free.  Between jobs the
 * workers sleep on a condition variable.  A job is posted by bumping a
 * generation number; each worker compares it with the last one it saw, so a
 * wake-up is never lost and a spurious one does nothing.  Worker i takes
 * part when i < threads - 1; the caller is the last participant, so a job
 * on T threads keeps T cores busy and never leaves the caller idle.
 *
 * Tasks are claimed one at a time from an atomic counter rather than split
 * into equal ranges up front: searches differ in cost (a query in a dense
 * region expands more nodes), and with a static split the call lasts as
 * long as its slowest range.  The counter costs one fetch_add per task,
 * which is why the batch calls make a task of several rows.
 *
 * One job at a time per pool.  ix->pool_lock is held for the whole job, and
 * a call that cannot take it with trylock (another thread's batch call is
 * running, or a task itself made a batch call) runs all its tasks on its
 * own thread.  Rejected alternatives: waiting for the pool serialises
 * independent callers and deadlocks a nested call; a second pool per caller
 * oversubscribes the cores that the first job already fills.
 *
 * Never fails: if the pool cannot be allocated or a thread cannot be
 * started, the job runs on the threads that exist, the caller alone if
 * need be.  Workers start with every signal blocked, so a signal meant for
 * the application is never delivered to a library thread.  After fork() the
 * child has the pool's memory but not its threads: a pool records the pid
 * that made it, and in any other process batch calls run on the calling
 * thread and sw__pool_free only releases the memory.
 *
 * Synchronisation is one mutex and two condition variables per pool plus
 * the atomic task counter, so ThreadSanitizer sees every hand-over: the job
 * is published under the mutex, and a worker's results are visible to the
 * caller because it reports completion under the same mutex.
 */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <signal.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

typedef struct sw__worker {
    struct sw__pool *pool;
    size_t id;     /* takes part in a job when id < the job's worker count */
    uint64_t seen; /* last generation this worker has looked at */
    pthread_t thread;
} sw__worker;

struct sw__pool {
    pthread_mutex_t lock; /* guards the fields below, except `next` */
    pthread_cond_t wake;  /* a job was posted, or stop */
    pthread_cond_t done;  /* the last participating worker finished */
    sw__worker **workers; /* stable pointers: a worker holds its own */
    size_t nworkers, cap;
    pid_t pid; /* process that started the workers */
    bool stop;
    /* the current job */
    uint64_t gen;
    sw__task_fn fn;
    void *arg;
    size_t ntasks;
    size_t active;  /* workers 0 .. active-1 take part */
    size_t running; /* participating workers not yet finished */
    atomic_size_t next; /* next task to claim */
};

size_t sw__cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (size_t)n;
}

/* ==== Workers ==== */

/* Claim and run tasks until there are none left. */
static void drain(struct sw__pool *p, sw__task_fn fn, void *arg, size_t ntasks) {
    for (;;) {
        size_t t = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (t >= ntasks) return;
        fn(arg, t);
    }
}

static void *worker_main(void *a) {
    sw__worker *w = a;
    struct sw__pool *p = w->pool;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->stop && p->gen == w->seen) pthread_cond_wait(&p->wake, &p->lock);
        if (p->stop) break;
        w->seen = p->gen;
        if (w->id >= p->active) continue;
        sw__task_fn fn = p->fn;
        void *arg = p->arg;
        size_t ntasks = p->ntasks;
        pthread_mutex_unlock(&p->lock);
        drain(p, fn, arg, ntasks);
        pthread_mutex_lock(&p->lock);
        if (--p->running == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* ==== Creating and growing ==== */

static struct sw__pool *pool_new(sw_index *ix) {
    struct sw__pool *p = sw__calloc(&ix->mem, sizeof *p, SW__LINE);
    if (!p) return NULL;
    if (pthread_mutex_init(&p->lock, NULL) != 0) goto fail_mutex;
    if (pthread_cond_init(&p->wake, NULL) != 0) goto fail_wake;
    if (pthread_cond_init(&p->done, NULL) != 0) goto fail_done;
    p->pid = getpid();
    atomic_init(&p->next, 0);
    return p;

fail_done:
    pthread_cond_destroy(&p->wake);
fail_wake:
    pthread_mutex_destroy(&p->lock);
fail_mutex:
    sw__free(&ix->mem, p, sizeof *p);
    return NULL;
}

/* Start workers until there are `want`, or until one fails to start.  Called
 * with ix->pool_lock held and no job running, so no worker reads the fields
 * written here without the lock. */
static void pool_grow(sw_index *ix, struct sw__pool *p, size_t want) {
    if (p->nworkers >= want) return;
    if (want > p->cap) {
        sw__worker **w = sw__alloc(&ix->mem, want * sizeof *w, sizeof(void *));
        if (!w) return;
        if (p->nworkers) memcpy(w, p->workers, p->nworkers * sizeof *w);
        sw__free(&ix->mem, p->workers, p->cap * sizeof *w);
        p->workers = w;
        p->cap = want;
    }
    /* Workers inherit the creator's signal mask: block everything around
     * pthread_create, then restore the caller's. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    while (p->nworkers < want) {
        sw__worker *w = sw__alloc(&ix->mem, sizeof *w, SW__LINE);
        if (!w) break;
        w->pool = p;
        w->id = p->nworkers;
        w->seen = p->gen;
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            sw__free(&ix->mem, w, sizeof *w);
            break;
        }
        p->workers[p->nworkers++] = w;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* ==== Running a job ==== */

void sw__parallel(const sw_index *ix, size_t threads, size_t ntasks, sw__task_fn fn, void *arg) {
    sw_index *mix = (sw_index *)ix; /* the pool is mutable state behind a lock */
    if (threads == 0) threads = sw__cpu_count();
    if (threads > SW_MAX_THREADS) threads = SW_MAX_THREADS;
    if (threads > ntasks) threads = ntasks;
    if (threads <= 1 || pthread_mutex_trylock(&mix->pool_lock) != 0) goto alone;

    struct sw__pool *p = mix->pool;
    if (!p) p = mix->pool = pool_new(mix);
    if (!p || p->pid != getpid()) goto alone_unlock;
    pool_grow(mix, p, threads - 1);
    size_t active = p->nworkers < threads - 1 ? p->nworkers : threads - 1;
    if (active == 0) goto alone_unlock;

    pthread_mutex_lock(&p->lock);
    p->fn = fn;
    p->arg = arg;
    p->ntasks = ntasks;
    p->active = active;
    p->running = active;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    p->gen++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);

    drain(p, fn, arg, ntasks);

    pthread_mutex_lock(&p->lock);
    while (p->running > 0) pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_unlock(&mix->pool_lock);
    return;

alone_unlock:
    pthread_mutex_unlock(&mix->pool_lock);
alone:
    for (size_t t = 0; t < ntasks; t++) fn(arg, t);
}

/* ==== Freeing ==== */

void sw__pool_free(sw_index *ix) {
    struct sw__pool *p = ix->pool;
    if (!p) return;
    /* In a forked child the workers do not exist: nothing to stop or join,
     * and the lock may have been copied held.  Release the memory only. */
    bool ours = p->pid == getpid();
    if (ours) {
        pthread_mutex_lock(&p->lock);
        p->stop = true;
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->lock);
    }
    for (size_t i = 0; i < p->nworkers; i++) {
        if (ours) pthread_join(p->workers[i]->thread, NULL);
        sw__free(&ix->mem, p->workers[i], sizeof *p->workers[i]);
    }
    sw__free(&ix->mem, p->workers, p->cap * sizeof *p->workers);
    if (ours) {
        pthread_cond_destroy(&p->done);
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->lock);
    }
    sw__free(&ix->mem, p, sizeof *p);
    ix->pool = NULL;
}

/**
 * Request counts and latencies by route and status, kept as plain numbers so the daemon pays nothing
 * for Prometheus until something scrapes it (the client library is loaded on the first scrape).
 */
export const LATENCY_BUCKETS_SECONDS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300] as const;

export interface RouteLatency {
  method: string;
  route: string;
  /** Cumulative counts per bucket of LATENCY_BUCKETS_SECONDS (the last, +Inf, is `count`). */
  buckets: number[];
  count: number;
  sumSeconds: number;
}

export interface RequestCount { method: string; route: string; status: number; count: number }

export class RequestStats {
  private readonly counts = new Map<string, RequestCount>();
  private readonly latencies = new Map<string, RouteLatency>();

  /** `route` is the matched pattern (`/api/v1/vms/:id`), never the raw URL: label values stay bounded. */
  record(method: string, route: string, status: number, seconds: number): void {
    const ck = `${method} ${route} ${status}`;
    const c = this.counts.get(ck);
    if (c) c.count++;
    else this.counts.set(ck, { method, route, status, count: 1 });
    const lk = `${method} ${route}`;
    let l = this.latencies.get(lk);
    if (!l) {
      l = { method, route, buckets: LATENCY_BUCKETS_SECONDS.map(() => 0), count: 0, sumSeconds: 0 };
      this.latencies.set(lk, l);
    }
    l.count++;
    l.sumSeconds += seconds;
    for (let i = LATENCY_BUCKETS_SECONDS.length - 1; i >= 0 && seconds <= LATENCY_BUCKETS_SECONDS[i]!; i--) l.buckets[i]!++;
  }

  requests(): RequestCount[] { return [...this.counts.values()]; }
  latency(): RouteLatency[] { return [...this.latencies.values()]; }
}

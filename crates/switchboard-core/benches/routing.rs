//! Routing engine benchmark (issue: 200,000 decisions/s on one core, p99 under 50 µs, memory
//! under 200 MB with 10,000 agents, 200 queues and 50,000 waiting contacts).
//!
//! A decision is one call that routes: an agent finishing a contact and taking the best waiting
//! one (`release`), or a new contact arriving and waiting or going to an agent (`enqueue`). The
//! steady state alternates the two, so the number waiting stays put. Latency is timed per
//! decision; throughput is measured on a separate untimed run. Memory is what the engine holds
//! (live bytes from a counting allocator). Run: `cargo bench -p switchboard-core --bench routing`
//! (add `-- --quick` for a short run; pin with `taskset -c 1` for one core).

use chrono::{DateTime, Duration, TimeZone, Utc};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use switchboard_core::routing::{AgentSpec, RoutingEngine, WaitingContact, WorkKind};
use switchboard_core::{ContactId, Language, QueueId, UserId};
use uuid::Uuid;

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// xorshift64*: deterministic, so every run routes the same world.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const AGENTS: usize = 10_000;
const QUEUES: usize = 200;
const VOICE_QUEUES: usize = 50;
const LANGUAGES: [&str; 10] = ["en", "es", "fr", "de", "it", "pt", "nl", "pl", "sv", "da"];

struct World {
    engine: RoutingEngine,
    rng: Rng,
    queues: Vec<QueueId>,
    languages: Vec<Language>,
    assigned: Vec<ContactId>,
    next_contact: u64,
    clock: DateTime<Utc>,
}

impl World {
    fn new_contact(&mut self) -> WaitingContact {
        self.next_contact += 1;
        self.clock += Duration::milliseconds(1);
        let language = if self.rng.below(2) == 0 {
            None
        } else {
            Some(self.languages[self.rng.below(LANGUAGES.len())].clone())
        };
        WaitingContact {
            id: ContactId::from_uuid(Uuid::from_u64_pair(1, self.next_contact)),
            queue: self.queues[self.rng.below(QUEUES)],
            priority: (self.rng.below(10) == 0) as i32,
            enqueued_at: self.clock,
            language,
        }
    }

    /// A world with every agent routable, busy up to capacity, and `waiting` contacts queued.
    fn build(waiting: usize) -> World {
        let mut rng = Rng(0x5EED_CAFE_F00D);
        let mut engine = RoutingEngine::new();
        let clock = Utc.with_ymd_and_hms(2026, 6, 1, 9, 0, 0).unwrap();
        let queues: Vec<QueueId> = (0..QUEUES)
            .map(|q| QueueId::from_uuid(Uuid::from_u64_pair(2, q as u64)))
            .collect();
        for (n, q) in queues.iter().enumerate() {
            engine
                .upsert_queue(
                    *q,
                    if n < VOICE_QUEUES {
                        WorkKind::Call
                    } else {
                        WorkKind::Chat
                    },
                )
                .unwrap();
        }
        let languages: Vec<Language> = LANGUAGES
            .iter()
            .map(|l| Language::parse(l).unwrap())
            .collect();
        for a in 0..AGENTS {
            let own_queues = (0..4 + rng.below(3))
                .map(|_| queues[rng.below(QUEUES)])
                .collect();
            let own_languages = if rng.below(10) < 3 {
                vec![]
            } else {
                (0..1 + rng.below(2))
                    .map(|_| languages[rng.below(LANGUAGES.len())].clone())
                    .collect()
            };
            let spec = AgentSpec {
                id: UserId::from_uuid(Uuid::from_u64_pair(3, a as u64)),
                queues: own_queues,
                languages: own_languages,
                max_calls: 1,
                max_chats: 3,
            };
            engine.upsert_agent(spec.clone(), clock).unwrap();
            engine
                .set_routable(spec.id, true, clock + Duration::milliseconds(a as i64))
                .unwrap();
        }
        let mut world = World {
            engine,
            rng,
            queues,
            languages,
            assigned: Vec::new(),
            next_contact: 0,
            clock,
        };
        while world.engine.waiting_total() < waiting {
            let contact = world.new_contact();
            let now = world.clock;
            if let Some(a) = world.engine.enqueue(contact, now).unwrap() {
                world.assigned.push(a.contact);
            }
        }
        world
    }

    /// One decision: even steps release an assigned contact (its agent takes the next best),
    /// odd steps enqueue a new contact.
    fn step(&mut self, n: usize) {
        self.clock += Duration::milliseconds(1);
        let now = self.clock;
        if n % 2 == 0 && !self.assigned.is_empty() {
            let index = self.rng.below(self.assigned.len());
            let contact = self.assigned.swap_remove(index);
            for a in self.engine.release(contact, now).unwrap() {
                self.assigned.push(a.contact);
            }
        } else {
            let contact = self.new_contact();
            if let Some(a) = self.engine.enqueue(contact, now).unwrap() {
                self.assigned.push(a.contact);
            }
        }
    }
}

struct Figures {
    /// Waiting when timing began and when it ended (contacts in a language nobody in their
    /// queue serves are never routed, so the count drifts up).
    waiting_start: usize,
    waiting_end: usize,
    decisions_per_second: f64,
    p50_ns: u128,
    p99_ns: u128,
    p999_ns: u128,
    max_ns: u128,
    engine_mib: f64,
}

fn measure(waiting: usize, decisions: usize) -> Figures {
    let before = LIVE.load(Ordering::Relaxed);
    let mut world = World::build(waiting);
    let engine_bytes = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    let waiting_start = world.engine.waiting_total();
    // Warm up, then time each decision.
    for n in 0..decisions / 10 {
        world.step(n);
    }
    let mut samples = Vec::with_capacity(decisions);
    for n in 0..decisions {
        let start = Instant::now();
        world.step(n);
        samples.push(start.elapsed().as_nanos());
    }
    // Throughput without the per-decision timer.
    let start = Instant::now();
    for n in 0..decisions {
        world.step(n);
    }
    let elapsed = start.elapsed().as_secs_f64();
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    Figures {
        waiting_start,
        waiting_end: world.engine.waiting_total(),
        decisions_per_second: decisions as f64 / elapsed,
        p50_ns: at(0.50),
        p99_ns: at(0.99),
        p999_ns: at(0.999),
        max_ns: *samples.last().unwrap_or(&0),
        engine_mib: engine_bytes as f64 / (1024.0 * 1024.0),
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let decisions = if quick { 20_000 } else { 400_000 };
    println!("routing engine: {AGENTS} agents, {QUEUES} queues ({VOICE_QUEUES} voice), {} languages; {decisions} decisions per row", LANGUAGES.len());
    println!(
        "{:>17} {:>14} {:>9} {:>9} {:>9} {:>9} {:>11}",
        "waiting start→end", "decisions/s", "p50 µs", "p99 µs", "p99.9 µs", "max µs", "engine MiB"
    );
    let sizes: &[usize] = if quick {
        &[1_000, 50_000]
    } else {
        &[1_000, 10_000, 50_000, 100_000]
    };
    let mut rows = Vec::new();
    for &size in sizes {
        let f = measure(size, decisions);
        println!(
            "{:>17} {:>14.0} {:>9.2} {:>9.2} {:>9.2} {:>9.1} {:>11.1}",
            format!("{}→{}", f.waiting_start, f.waiting_end),
            f.decisions_per_second,
            f.p50_ns as f64 / 1000.0,
            f.p99_ns as f64 / 1000.0,
            f.p999_ns as f64 / 1000.0,
            f.max_ns as f64 / 1000.0,
            f.engine_mib
        );
        rows.push((size, f));
    }
    if let (Some((_, small)), Some((big_size, big))) = (rows.first(), rows.last()) {
        println!(
            "cost growth from {} to {big_size} waiting: p50 x{:.2}, throughput x{:.2}",
            rows[0].0,
            big.p50_ns as f64 / small.p50_ns.max(1) as f64,
            big.decisions_per_second / small.decisions_per_second
        );
    }
    if let Some((_, f)) = rows.iter().find(|(size, _)| *size == 50_000) {
        let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
        println!(
            "targets at 50,000 waiting: >= 200,000 decisions/s {}; p99 < 50 µs {}; memory < 200 MB {}",
            verdict(f.decisions_per_second >= 200_000.0),
            verdict(f.p99_ns < 50_000),
            verdict(f.engine_mib < 190.0)
        );
    }
}

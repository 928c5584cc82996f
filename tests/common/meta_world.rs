//! The seeded world of the metamorphic test (`tests/metamorphic.rs`): a
//! small generator, the data every instance serves ([`World`]: things,
//! users, their feeds and secrets), and the regressions planted in the
//! candidate ([`Plan`]). Everything here follows from the seed.

#![allow(dead_code)]

use std::collections::BTreeMap;

// ---- a seeded generator -------------------------------------------------

/// SplitMix64: small, fast and the same everywhere (no crate needed).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x0005_eed0_f5ad_01a9)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

// ---- the data -----------------------------------------------------------

#[derive(Clone, Debug, Hash)]
pub struct Thing {
    pub id: u64,
    pub name: String,
    pub price: u64,
    pub stock: u64,
    pub tags: Vec<String>,
    pub owner: String,
    /// Unix seconds.
    pub updated: i64,
}

#[derive(Clone, Debug, Hash)]
pub struct User {
    pub name: String,
    /// Secrets: they must never reach shadowtap's outputs.
    pub token: String,
    pub session: String,
    pub display_name: String,
    pub plan: String,
    /// Newest first: (id, title).
    pub feed: Vec<(u64, String)>,
    pub unread: u64,
}

/// Everything the instances serve; legacy, secondary and candidate share it.
#[derive(Clone, Debug)]
pub struct World {
    pub things: Vec<Thing>,
    pub users: Vec<User>,
}

const USERS: [&str; 4] = ["alice", "bob", "carol", "dave"];
const WORDS: [&str; 8] = ["red", "blue", "tall", "small", "old", "new", "cold", "warm"];
pub const THINGS: u64 = 8;

impl World {
    pub fn of(seed: u64) -> World {
        let mut rng = Rng::new(seed);
        let things = (1..=THINGS)
            .map(|id| {
                let mut tags: Vec<String> = WORDS.iter().map(|w| w.to_string()).collect();
                rng.shuffle(&mut tags);
                tags.truncate(2 + rng.below(3));
                Thing {
                    id,
                    name: format!("{} thing {id}", rng.pick(&WORDS)),
                    price: 100 + rng.below(900) as u64,
                    stock: rng.below(50) as u64,
                    tags,
                    owner: rng.pick(&USERS).to_string(),
                    updated: 1_700_000_000 + rng.below(10_000_000) as i64,
                }
            })
            .collect();
        let users = USERS
            .iter()
            .map(|name| {
                let mut next_id = 1000 + rng.below(1000) as u64;
                let feed = (0..3 + rng.below(3))
                    .map(|_| {
                        next_id += 1 + rng.below(20) as u64;
                        (next_id, format!("{} post", rng.pick(&WORDS)))
                    })
                    .rev()
                    .collect();
                User {
                    name: name.to_string(),
                    token: format!("tok-{name}-{:016x}", rng.next()),
                    session: format!("sess-{name}-{:016x}", rng.next()),
                    display_name: format!("{} {}", rng.pick(&WORDS), name),
                    plan: rng.pick(&["free", "pro", "team"]).to_string(),
                    feed,
                    unread: rng.below(10) as u64,
                }
            })
            .collect();
        World { things, users }
    }

    /// Every resource, in a fixed order.
    pub fn resources(&self) -> Vec<Resource> {
        let things = self.things.iter().map(|t| Resource::Thing(t.id));
        let feeds = (0..self.users.len()).map(Resource::Feed);
        let mes = (0..self.users.len()).map(Resource::Me);
        things.chain(feeds).chain(mes).collect()
    }
}

/// One thing a client can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    Thing(u64),
    /// The feed of user number n (asked with that user's token).
    Feed(usize),
    /// `/api/me` as user number n (asked with that user's cookie).
    Me(usize),
}

// ---- planted regressions ------------------------------------------------

/// A real bug planted in the candidate on one resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Regression {
    /// Answers this status (500 or 404) instead of 200.
    Status(u16),
    /// The value at this JSON pointer is wrong (a top-level key).
    Changed(&'static str),
    /// A number written as a string (`"485"`): a serialiser bug.
    Retyped(&'static str),
    /// This key is missing.
    Missing(&'static str),
    /// This key is there, `null`.
    Nulled(&'static str),
    /// The feed's items come oldest first.
    Reordered,
    /// A feed or `/api/me` answered as the next user: the wrong user's
    /// data (a session mix-up), where answers legitimately differ by user.
    OtherUser,
    /// This key, whose value is noise (different on every answer), is
    /// missing: a value that changes is no excuse for its absence.
    MissingNoisy(&'static str),
    /// This key, whose value is noise, is `null`: a value that changes is
    /// no excuse for its absence either.
    NulledNoisy(&'static str),
}

/// Which resource has which regression.
pub type Plan = BTreeMap<Resource, Regression>;

/// The kinds of regression, each planted at least once per seed.
const KINDS: [&str; 6] = ["status", "changed", "missing", "reordered", "other_user", "missing_noisy"];

/// Plants each kind of regression on a resource chosen by the seed, then
/// two more of random kinds; about half of the resources stay sound.
pub fn plan(seed: u64, world: &World) -> Plan {
    let mut rng = Rng::new(seed.wrapping_mul(31).wrapping_add(7));
    let mut kinds: Vec<&str> = KINDS.to_vec();
    kinds.extend([rng.pick(&KINDS), rng.pick(&KINDS)]);
    let mut free = world.resources();
    rng.shuffle(&mut free);
    let mut plan = Plan::new();
    for kind in kinds {
        let fits = |r: &Resource| match kind {
            "reordered" => matches!(r, Resource::Feed(_)),
            "other_user" => !matches!(r, Resource::Thing(_)),
            _ => true,
        };
        let Some(at) = free.iter().position(fits) else { continue };
        let resource = free.remove(at);
        plan.insert(resource, regression(kind, resource, &mut rng));
    }
    plan
}

fn regression(kind: &str, resource: Resource, rng: &mut Rng) -> Regression {
    let changed: &[&'static str] = match resource {
        Resource::Thing(_) => &["/price", "/name", "/owner"],
        Resource::Feed(_) => &["/unread"],
        Resource::Me(_) => &["/plan", "/display_name"],
    };
    let numeric: &[&'static str] = match resource {
        Resource::Thing(_) => &["/price", "/stock"],
        Resource::Feed(_) => &["/unread"],
        Resource::Me(_) => &[],
    };
    let missing: &[&'static str] = match resource {
        Resource::Thing(_) => &["/stock", "/owner"],
        Resource::Feed(_) => &["/unread"],
        Resource::Me(_) => &["/display_name"],
    };
    match kind {
        "status" => Regression::Status(rng.pick(&[500, 404])),
        "changed" if !numeric.is_empty() && rng.chance(30) => Regression::Retyped(rng.pick(numeric)),
        "changed" => Regression::Changed(rng.pick(changed)),
        "missing" if rng.chance(30) => Regression::Nulled(rng.pick(missing)),
        "missing" => Regression::Missing(rng.pick(missing)),
        "reordered" => Regression::Reordered,
        "other_user" => Regression::OtherUser,
        _ if rng.chance(30) => Regression::NulledNoisy(rng.pick(&["/request_id", "/served_at"])),
        _ => Regression::MissingNoisy(rng.pick(&["/request_id", "/served_at"])),
    }
}

//! The learner on generated traffic shaped like real APIs, checked against
//! the templates a person would write for them.

use std::collections::BTreeSet;

use super::*;

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    fn chars(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len).map(|_| alphabet[self.below(alphabet.len())] as char).collect()
    }
    /// A skewed pick: the first items much more often (popular subreddits).
    fn zipf<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let a = self.below(items.len());
        let b = self.below(items.len());
        items[a.min(b)]
    }
}

const BASE36: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
const BASE62: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const SUBS: &[&str] = &["golang", "rust", "python", "programming", "linux", "netsec", "devops", "sre"];
const WORDS: &[&str] =
    &["python", "latency", "go", "why", "we", "moved", "from", "to", "rust", "is", "fast", "the", "pcap", "tap"];
const SYLLABLES: &[&str] = &["ka", "lo", "mi", "ze", "ro", "ta", "ne", "vi", "su", "do"];

fn user_name(rng: &mut Rng) -> String {
    let mut name: String = (0..2 + rng.below(3)).map(|_| rng.pick(SYLLABLES)).collect();
    match rng.below(4) {
        0 => name.push_str(&rng.below(100).to_string()),
        1 => name = format!("{name}_{}", rng.pick(SYLLABLES)),
        _ => {}
    }
    name
}

fn slug(rng: &mut Rng) -> String {
    (0..3 + rng.below(4)).map(|_| rng.pick(WORDS)).collect::<Vec<_>>().join("_")
}

/// The issue's shapes: Reddit posts, fullname lookups, users, listings.
fn reddit(rng: &mut Rng, n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let path = match i % 4 {
                0 => format!("/r/{}/comments/{}/{}/", rng.zipf(SUBS), rng.chars(BASE36, 6), slug(rng)),
                1 => format!("/api/info?id=t3_{}", rng.chars(BASE36, 6)),
                2 => format!("/user/{}/about.json", user_name(rng)),
                _ => format!("/r/{}/{}.json", rng.zipf(SUBS), rng.pick(&["hot", "new", "top"])),
            };
            ("GET".to_string(), path)
        })
        .collect()
}

/// Other real shapes: GitHub issues, dated archives, e-mail addressed
/// resources, mixed-case base62 short links.
fn others(rng: &mut Rng, n: usize) -> Vec<(String, String)> {
    let owners = ["rust-lang", "golang", "torvalds", "nginx", "python", "tokio-rs"];
    let repos = ["core", "tools", "docs", "web", "cli"];
    (0..n)
        .map(|i| {
            let path = match i % 4 {
                0 => format!("/repos/{}/{}/issues/{}", rng.pick(&owners), rng.pick(&repos), 1 + rng.below(5000)),
                1 => format!("/archive/{}/{:02}/{:02}", 2015 + rng.below(10), 1 + rng.below(12), 1 + rng.below(28)),
                2 => format!("/users/{}@{}.com/prefs", user_name(rng), rng.pick(&["example", "mail"])),
                _ => format!("/s/{}", rng.chars(BASE62, 8)),
            };
            ("GET".to_string(), path)
        })
        .collect()
}

fn learn(paths: &[(String, String)]) -> Learned {
    let mut learner = Learner::default();
    for (method, uri) in paths {
        learner.observe(method, super::super::path_of(uri));
    }
    learner.learn()
}

fn names(learned: &Learned, paths: &[(String, String)]) -> BTreeSet<String> {
    paths.iter().map(|(m, uri)| learned.name(m, super::super::path_of(uri))).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn reddit_shapes_give_the_templates_a_person_would_write() {
    let paths = reddit(&mut Rng(7), 400);
    let learned = learn(&paths);
    assert_eq!(
        names(&learned, &paths),
        set(&[
            "GET /api/info",
            "GET /r/{name}/comments/{id}/{slug}/",
            "GET /r/{name}/hot.json",
            "GET /r/{name}/new.json",
            "GET /r/{name}/top.json",
            "GET /user/{name}/about.json",
        ])
    );
    let templates = learned.templates();
    let posts = templates.iter().find(|t| t.template == "GET /r/{name}/comments/{id}/{slug}/").unwrap();
    assert_eq!(posts.count, 100);
    assert_eq!(posts.raw_paths, 100, "{posts:?}");
    assert_eq!(posts.examples.len(), 3);
}

#[test]
fn other_api_shapes_give_the_templates_a_person_would_write() {
    let paths = others(&mut Rng(11), 400);
    let learned = learn(&paths);
    assert_eq!(
        names(&learned, &paths),
        set(&[
            "GET /archive/{year}/{month}/{day}",
            "GET /repos/{name}/{name}/issues/{id}",
            "GET /s/{id}",
            "GET /users/{email}/prefs",
        ])
    );
}

#[test]
fn collections_versions_and_listings_stay_apart() {
    let mut rng = Rng(3);
    let mut paths = Vec::new();
    for i in 0..600 {
        let collection = ["users", "posts", "comments", "tags", "groups"][i % 5];
        let version = ["v1", "v2", "v3"][i % 3];
        paths.push(("GET".to_string(), format!("/api/{version}/{collection}/{}", rng.below(10_000))));
        paths.push(("GET".to_string(), format!("/api/{version}/{collection}")));
    }
    let learned = learn(&paths);
    let got = names(&learned, &paths);
    assert_eq!(got.len(), 30, "{got:?}");
    assert!(got.contains("GET /api/v2/tags/{id}") && got.contains("GET /api/v1/users"), "{got:?}");
}

#[test]
fn names_do_not_depend_on_order_or_on_which_half_was_seen() {
    // Both shapes all along, as in a capture's first and second half.
    let (reddit, others) = (reddit(&mut Rng(21), 800), others(&mut Rng(22), 800));
    let paths: Vec<(String, String)> = reddit.into_iter().zip(others).flat_map(|(a, b)| [a, b]).collect();
    let whole = learn(&paths);
    let mut shuffled = paths.clone();
    let mut rng = Rng(5);
    for i in (1..shuffled.len()).rev() {
        shuffled.swap(i, rng.below(i + 1));
    }
    assert_eq!(learn(&shuffled).templates(), whole.templates(), "order changed the result");
    let (first, second) = paths.split_at(paths.len() / 2);
    let (a, b) = (learn(first), learn(second));
    for (method, uri) in &paths {
        let path = super::super::path_of(uri);
        assert_eq!(a.name(method, path), whole.name(method, path), "{uri}");
        assert_eq!(b.name(method, path), whole.name(method, path), "{uri}");
    }
}

#[test]
fn few_values_read_often_stay_literal_and_classes_still_apply() {
    let mut paths = Vec::new();
    for i in 0..300 {
        paths.push(("GET".to_string(), format!("/r/{}/about", ["golang", "rust"][i % 2])));
        paths.push(("GET".to_string(), format!("/api/users/{}", i)));
    }
    let learned = learn(&paths);
    assert_eq!(names(&learned, &paths), set(&["GET /api/users/{id}", "GET /r/golang/about", "GET /r/rust/about"]));
    // Never seen: classes and slugs after a placeholder.
    assert_eq!(learned.name("GET", "/x/42/what_we_learned_today"), "GET /x/{id}/{slug}");
    assert_eq!(learned.name("GET", "/get-user-profile"), "GET /get-user-profile");
    assert_eq!(learned.name("POST", "/"), "POST /");
}

#[test]
fn memory_is_bounded_and_overflow_makes_a_variable() {
    let limits = Limits { values_per_position: 16, nodes: 100, depth: 4 };
    let mut learner = Learner::new(limits);
    let mut rng = Rng(9);
    for _ in 0..20_000 {
        learner.observe("GET", &format!("/u/{}/{}/x/y/z/w", user_name(&mut rng), user_name(&mut rng)));
    }
    assert!(learner.nodes <= 2 * 100, "{}", learner.nodes);
    let learned = learner.learn();
    assert_eq!(learned.name("GET", "/u/kalo/mize/x/y/z/w"), "GET /u/{name}/{name}/x/y/z/w");
}

#[test]
fn a_variable_stays_variable_when_learning_again() {
    let mut learner = Learner::default();
    let five = ["ann", "bob", "cy", "dee", "eve"];
    for i in 0..20 {
        learner.observe("GET", &format!("/u/{}", five[i % 5]));
    }
    for name in ["fay", "gus", "hal", "ivy", "jo", "kit", "lu", "max", "ned", "oz", "pat", "quin"] {
        learner.observe("GET", &format!("/u/{name}"));
    }
    let early = learner.learn();
    assert_eq!(early.name("GET", "/u/zed"), "GET /u/{name}");
    // The same users again and again: on their own, counts say literal...
    for i in 0..400 {
        learner.observe("GET", &format!("/u/{}", five[i % 5]));
    }
    assert_eq!(learner.learn().name("GET", "/u/ann"), "GET /u/ann");
    // ... but a running daemon keeps the names it has given out.
    assert_eq!(learner.learn_after(&early).name("GET", "/u/ann"), "GET /u/{name}");
}

mod properties {
    use proptest::prelude::*;

    use super::super::super::Template;
    use super::*;

    /// Paths from a small grammar: literals, numbers, base36, names, slugs,
    /// other characters a request target may carry, trailing slashes.
    fn path() -> impl Strategy<Value = String> {
        let segment = prop_oneof![
            prop::sample::select(vec!["api", "r", "user", "comments", "hot.json", "v1", "{x}"])
                .prop_map(str::to_string),
            (0u32..5000).prop_map(|n| n.to_string()),
            "[a-z0-9]{6}",
            "[a-z]{2,8}",
            "[a-z]{2,5}(_[a-z]{2,5}){2,4}",
            "[a-zA-Z0-9._~%@:+-]{1,4}",
        ];
        (prop::collection::vec(segment, 0..6), any::<bool>())
            .prop_map(|(segments, slash)| format!("/{}{}", segments.join("/"), if slash { "/" } else { "" }))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Order does not matter, and every name is a template matching its
        /// own path (so pinning the printed templates names paths the same).
        #[test]
        fn names_are_order_free_templates_of_their_paths(
            paths in prop::collection::vec(path(), 1..300),
            seed in any::<u64>(),
        ) {
            let mut learner = Learner::default();
            for p in &paths {
                learner.observe("GET", p);
            }
            let learned = learner.learn();
            let mut shuffled = paths.clone();
            let mut rng = Rng(seed | 1);
            for i in (1..shuffled.len()).rev() {
                shuffled.swap(i, rng.below(i + 1));
            }
            let mut again = Learner::default();
            for p in &shuffled {
                again.observe("GET", p);
            }
            prop_assert_eq!(again.learn().templates(), learned.templates());
            for p in &paths {
                let name = learned.name("GET", p);
                let template = Template::parse(&name);
                prop_assert!(template.is_some_and(|t| t.matches("GET", p)), "{} for {}", name, p);
            }
        }
    }
}

#[test]
fn a_sparse_sample_of_static_routes_is_not_a_variable() {
    // A short capture: a few users, and four static routes seen once each.
    let mut paths: Vec<(String, String)> =
        (0..16).map(|i| ("GET".to_string(), format!("/api/v1/users/{}", i % 3))).collect();
    for route in ["health", "metrics", "status", "version"] {
        paths.push(("GET".to_string(), format!("/api/v1/{route}")));
    }
    let learned = learn(&paths);
    assert_eq!(learned.name("GET", "/api/v1/health"), "GET /api/v1/health");
    assert_eq!(learned.name("GET", "/api/v1/users/2"), "GET /api/v1/users/{id}");
}

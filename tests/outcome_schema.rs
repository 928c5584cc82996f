//! The outcome line's JSON Schema (`schema/outcome-line.v1.json`, draft
//! 2020-12): real `--out` lines from replays of bundled captures (the
//! demo capture to the demo's candidate, with its diffs, matches and
//! equivalences; to a closed port, every line an error; writes skipped
//! with their reason; production answers with broken framing) validate
//! against it, every field they carry is declared in it, and a line with
//! a field removed or renamed, or another version, does not validate.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

#[path = "common/demo_service.rs"]
mod demo_service;
#[path = "common/outcomes.rs"]
mod outcomes;
use shadowtap::demo::Flavor;

const SCHEMA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/outcome-line.v1.json");

fn pcap(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps").join(name)
}

fn schema() -> Value {
    serde_json::from_str(&std::fs::read_to_string(SCHEMA).unwrap()).unwrap()
}

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::options().should_validate_formats(true).build(schema).unwrap()
}

/// Outcome lines of replays that between them give every outcome a
/// replay of a saved capture can give without a second legacy instance.
fn real_lines(dir: &Path) -> Vec<Value> {
    let candidate = format!("http://{}", demo_service::service(Flavor::Candidate));
    let closed = format!("http://{}", std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap());
    let mut lines = Vec::new();
    lines.extend(outcomes::replay(dir, "demo", &pcap("demo.pcap"), &candidate, &[]).lines);
    lines.extend(outcomes::replay(dir, "down", &pcap("curl-get.pcap"), &closed, &[]).lines);
    lines.extend(outcomes::replay(dir, "writes", &pcap("post-and-methods.pcap"), &candidate, &[]).lines);
    lines.extend(outcomes::replay(dir, "broken", &pcap("broken-framing.pcap"), &candidate, &[]).lines);
    lines
}

/// Keys of `value` (an object) not among `properties` of `schema`.
fn undeclared(value: &Value, schema: &Value) -> Vec<String> {
    let declared = &schema["properties"];
    value.as_object().unwrap().keys().filter(|k| declared.get(k.as_str()).is_none()).cloned().collect()
}

#[test]
fn real_outcome_lines_validate_and_declare_every_field() {
    let schema = schema();
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert!(jsonschema::meta::is_valid(&schema), "not a valid JSON Schema");
    let validator = validator(&schema);
    let dir = tempfile::tempdir().unwrap();
    let lines = real_lines(dir.path());
    assert!(lines.len() > 20, "{} lines", lines.len());
    let (mut outcomes, mut keys) = (BTreeSet::new(), BTreeSet::new());
    for line in &lines {
        let errors: Vec<String> = validator.iter_errors(line).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{line}: {errors:?}");
        assert_eq!(line["schema"], 1, "{line}");
        assert!(undeclared(line, &schema).is_empty(), "undeclared {:?} in {line}", undeclared(line, &schema));
        for d in line["differences"].as_array().unwrap() {
            assert!(undeclared(d, &schema["$defs"]["difference"]).is_empty(), "{d}");
        }
        for e in line["explained"].as_array().unwrap() {
            assert!(undeclared(e, &schema["properties"]["explained"]["items"]).is_empty(), "{e}");
        }
        for m in line.get("mapped_ids").and_then(Value::as_array).into_iter().flatten() {
            assert!(undeclared(m, &schema["properties"]["mapped_ids"]["items"]).is_empty(), "{m}");
        }
        outcomes.insert(line["outcome"].as_str().unwrap().to_string());
        keys.extend(line.as_object().unwrap().keys().cloned());
        keys.extend(line["differences"].as_array().unwrap().iter().map(|d| format!("difference:{}", d["kind"])));
    }
    for outcome in ["match", "diff", "skipped", "error"] {
        assert!(outcomes.contains(outcome), "no {outcome} line among {outcomes:?}");
    }
    for key in ["reason", "equivalences", "difference:\"changed\"", "difference:\"malformed_recorded\""] {
        assert!(keys.contains(key), "no line with {key}: {keys:?}");
    }
}

#[test]
fn a_line_with_a_field_removed_renamed_or_another_version_is_refused() {
    let schema = schema();
    let validator = validator(&schema);
    let dir = tempfile::tempdir().unwrap();
    let lines = real_lines(dir.path());
    let diff = lines
        .iter()
        .find(|l| l["outcome"] == "diff" && !l["differences"].as_array().unwrap().is_empty())
        .expect("a diff line")
        .clone();
    assert!(validator.is_valid(&diff));
    let required: Vec<String> =
        schema["required"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect();
    assert!(required.len() >= 13, "{required:?}");
    for key in &required {
        let mut removed = diff.clone();
        removed.as_object_mut().unwrap().remove(key);
        assert!(!validator.is_valid(&removed), "a line without {key} validates");
        let mut renamed = diff.clone();
        let value = renamed.as_object_mut().unwrap().remove(key).unwrap();
        renamed[format!("{key}_v2")] = value;
        assert!(!validator.is_valid(&renamed), "a line with {key} renamed validates");
    }
    for (pointer, value) in [
        ("/schema", Value::from(2)),
        ("/outcome", Value::from("matched")),
        ("/differences/0/kind", Value::from("changd")),
        ("/recorded_status", Value::from("200")),
        ("/ts", Value::from("yesterday")),
    ] {
        let mut changed = diff.clone();
        *changed.pointer_mut(pointer).unwrap() = value.clone();
        assert!(!validator.is_valid(&changed), "{pointer} = {value} validates");
    }
    let mut difference_renamed = diff.clone();
    let first = difference_renamed.pointer_mut("/differences/0").unwrap().as_object_mut().unwrap();
    let path = first.remove("path").unwrap();
    first.insert("pointer".into(), path);
    assert!(!validator.is_valid(&difference_renamed), "a difference without path validates");
}

//! Config file parsing (`Config::parse`): any text gives a config or a
//! one-line error.

use shadowtap::replay::config::Config;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else { return };
        if let Err(e) = Config::parse(text, "fuzz.toml") {
            let message = e.to_string();
            assert!(!message.contains('\n'), "error on more than one line: {message}");
        }
    });
}

//! A component built for a processor world newer than the host serves (0.2.0): the host
//! must refuse it at deploy time and name the interface. Built for `wasm32` only.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({
    inline: "
        package fjord:processor@0.2.0;

        interface logging {
            log: func(message: string);
        }

        world processor {
            import logging;
            export init: func(config: list<tuple<string, string>>) -> result<_, string>;
        }
    ",
    world: "processor",
});

struct Newer;

impl Guest for Newer {
    fn init(_config: Vec<(String, String)>) -> Result<(), String> {
        fjord::processor::logging::log("from the future");
        Ok(())
    }
}

export!(Newer);

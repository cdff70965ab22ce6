//! A component that imports an interface the host does not offer: the host must refuse it
//! at deploy time and name the import. Built for `wasm32` only.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({
    inline: "
        package fjord:secrets@0.1.0;

        interface vault {
            get: func(name: string) -> string;
        }

        world processor {
            import vault;
            export init: func(config: list<tuple<string, string>>) -> result<_, string>;
        }
    ",
    world: "processor",
});

struct Foreign;

impl Guest for Foreign {
    fn init(_config: Vec<(String, String)>) -> Result<(), String> {
        let _ = fjord::secrets::vault::get("password");
        Ok(())
    }
}

export!(Foreign);

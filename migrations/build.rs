//! Lists the migrations: every `src/m<yyyymmdd>_<nnnnnn>_<what>.rs` becomes a
//! module and a step of `Migrator::migrations`, in file-name order. Adding a
//! schema change is adding its file; there is no second list to keep in step
//! (a file missing from a hand-kept list was a migration that never ran).

use std::{env, error::Error, fmt::Write as _, fs, path::PathBuf};

fn is_migration_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() > 17
        && bytes[0] == b'm'
        && bytes[1..9].iter().all(u8::is_ascii_digit)
        && bytes[9] == b'_'
        && bytes[10..16].iter().all(u8::is_ascii_digit)
        && bytes[16] == b'_'
}

fn main() -> Result<(), Box<dyn Error>> {
    let src = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("src");
    println!("cargo:rerun-if-changed={}", src.display());
    let mut names = Vec::new();
    for entry in fs::read_dir(&src)? {
        let file = entry?.file_name().to_string_lossy().into_owned();
        let Some(name) = file.strip_suffix(".rs") else {
            continue;
        };
        if name == "lib" {
            continue;
        }
        if !is_migration_name(name) {
            return Err(format!(
                "migrations/src/{file}: a migration is named m<yyyymmdd>_<nnnnnn>_<what>.rs"
            )
            .into());
        }
        names.push(name.to_owned());
    }
    names.sort();

    let mut code = String::new();
    for name in &names {
        let path = src.join(format!("{name}.rs"));
        writeln!(
            code,
            "#[path = {:?}]\nmod {name};",
            path.display().to_string()
        )?;
    }
    code.push_str("\n/// Every migration, oldest first.\nfn all() -> Vec<Box<dyn MigrationTrait>> {\n    vec![\n");
    for name in &names {
        writeln!(code, "        Box::new({name}::Migration),")?;
    }
    code.push_str("    ]\n}\n");
    fs::write(
        PathBuf::from(env::var("OUT_DIR")?).join("migrations.rs"),
        code,
    )?;
    Ok(())
}

//! Typed clients (SPEC §19): the module generated for the example entities matches its checked-in
//! snapshot (`UPDATE_SNAPSHOTS=1` rewrites it) and does not depend on the models' order; the
//! module of every schema the golden tests accept, and of the examples, passes the real
//! `tsc --strict --noEmit` with zod and kysely installed (`tests/typescript`, set up by
//! `./scripts/test`), as does `checks/kysely.ts`, which queries the generated `DB` interface
//! with Kysely; an entity whose name would clash with another declaration is refused by name.

use std::path::{Path, PathBuf};
use std::process::Command;

use heck::ToUpperCamelCase;
use metaengine_core::compile::{CompiledModel, compile};
use metaengine_core::{ValidationContext, validate_schema};
use metaengine_runtime::codegen::typescript;
use serde_json::{Value, json};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn model(entity: &str, schema: &Value) -> CompiledModel {
    let ctx = ValidationContext {
        entity_name: Some(entity),
        entity_exists: &|_| true,
    };
    let typed =
        validate_schema(schema, &ctx).unwrap_or_else(|problems| panic!("{entity}: {problems:?}"));
    compile(entity, "v1", &typed, "test", "2026-12-06T00:00:00.000Z")
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The example Invoice, a Customer it refers to and a Payment that refers to it.
fn examples() -> Vec<CompiledModel> {
    let mut invoice = read(&repo().join("examples/invoice-v1.json"));
    invoice["fields"].as_array_mut().unwrap().push(json!({
        "name": "buyerId", "type": "reference", "referenceTo": "Customer"
    }));
    let customer = json!({ "fields": [
        { "name": "name", "type": "string", "required": true, "minLength": 1, "maxLength": 80 },
        { "name": "email", "type": "string", "pattern": "^[^@]+@[^@]+$" },
        { "name": "vip", "type": "boolean", "default": false },
        { "name": "since", "type": "datetime" },
        { "name": "profile", "type": "json" }
    ] });
    let payment = json!({ "fields": [
        { "name": "invoiceId", "type": "reference", "referenceTo": "Invoice", "required": true, "onDelete": "cascade" },
        { "name": "amount", "type": "decimal", "precision": 10, "scale": 2, "required": true },
        { "name": "attempts", "type": "integer", "min": 0, "max": 10 },
        { "name": "ratio", "type": "number" }
    ] });
    vec![
        model("Invoice", &invoice),
        model("Customer", &customer),
        model("Payment", &payment),
    ]
}

#[test]
fn the_examples_module_matches_its_snapshot() {
    let models = examples();
    let refs: Vec<&CompiledModel> = models.iter().collect();
    let module = typescript(&refs).unwrap();
    let reversed: Vec<&CompiledModel> = models.iter().rev().collect();
    assert_eq!(
        typescript(&reversed).unwrap(),
        module,
        "the models' order changes nothing"
    );
    let path = repo().join("crates/metaengine-runtime/tests/fixtures/examples.ts");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &module).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == module,
        "the generated module differs from {} (UPDATE_SNAPSHOTS=1 rewrites it)",
        path.display()
    );
    for wanted in [
        "export interface Invoice {",
        "  totalAmount: string;",
        "  status: \"draft\" | \"sent\" | \"paid\" | null;",
        "  Payment_via_invoiceId?: Payment[];",
        "  buyerId?: Customer | null;",
        "export const PaymentCreateSchema = z.object({",
        "  \"core.ent_payment\": EntPaymentTable;",
        "    Invoice: entityClient<Invoice, InvoiceCreate, InvoiceUpdate>(options, \"Invoice\"),",
    ] {
        assert!(module.contains(wanted), "no `{wanted}` in:\n{module}");
    }
}

#[test]
fn every_accepted_schema_passes_tsc_strict() {
    let tools = repo().join("tests/typescript");
    let tsc = tools.join("node_modules/.bin/tsc");
    assert!(
        tsc.exists(),
        "TypeScript is not installed in {}: run ./scripts/test (it runs `npm ci` there)",
        tools.display()
    );
    let generated = tools.join("generated");
    let _ = std::fs::remove_dir_all(&generated);
    std::fs::create_dir_all(&generated).unwrap();
    let models = examples();
    let refs: Vec<&CompiledModel> = models.iter().collect();
    std::fs::write(generated.join("examples.ts"), typescript(&refs).unwrap()).unwrap();
    let golden = repo().join("crates/metaengine-core/tests/schemas/passing");
    let mut count = 0;
    for entry in std::fs::read_dir(&golden).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let m = model(&stem.to_upper_camel_case(), &read(&path));
        std::fs::write(
            generated.join(format!("{stem}.ts")),
            typescript(&[&m]).unwrap(),
        )
        .unwrap();
        count += 1;
    }
    assert!(count >= 3);
    let out = Command::new(&tsc)
        .arg("-p")
        .arg(tools.join("tsconfig.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tsc --strict refused a generated module:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_name_that_would_clash_is_refused_by_name() {
    let note = json!({ "fields": [{ "name": "text", "type": "string" }] });
    let problem = model("Problem", &note);
    let err = typescript(&[&problem]).unwrap_err();
    assert!(
        err.contains("`Problem` (the module itself and entity `Problem`)"),
        "{err}"
    );
    let (invoice, create) = (model("Invoice", &note), model("InvoiceCreate", &note));
    let err = typescript(&[&invoice, &create]).unwrap_err();
    assert!(
        err.contains("`InvoiceCreate` (entity `Invoice` and entity `InvoiceCreate`)"),
        "{err}"
    );
}

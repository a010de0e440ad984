use super::*;

#[test]
fn field_must_be_an_object() {
    let msg = fails_at(json!({"fields": ["amount"]}), "/fields/0");
    assert_eq!(msg, "field must be an object, found the string `amount`");
}

#[test]
fn field_name_is_required_a_string_and_valid() {
    assert_eq!(
        field_fails_at(json!({"type": "string"}), "/name"),
        "field is missing `name`"
    );
    assert_eq!(
        field_fails_at(json!({"name": 7, "type": "string"}), "/name"),
        "field name must be a string, found the number `7`"
    );
    assert_eq!(
        field_fails_at(json!({"name": "Amount", "type": "string"}), "/name"),
        "field name `Amount` must match `^[a-z][A-Za-z0-9]*$` (camelCase)"
    );
    field_fails_at(json!({"name": "select", "type": "string"}), "/name");
    field_fails_at(json!({"name": "createdAt", "type": "string"}), "/name");
    field_fails_at(json!({"name": "pgThing", "type": "string"}), "/name");
    field_fails_at(json!({"name": "a".repeat(64), "type": "string"}), "/name");
    field_passes(json!({"name": "a".repeat(63), "type": "string"}));
    for ok in ["name", "status", "type", "date", "key"] {
        field_passes(json!({"name": ok, "type": "string"}));
    }
}

#[test]
fn field_type_is_required_and_known() {
    assert_eq!(
        field_fails_at(json!({"name": "a"}), "/type"),
        "field is missing `type`"
    );
    assert_eq!(
        field_fails_at(json!({"name": "a", "type": "strng"}), "/type"),
        "unknown field type `strng`; expected `string`, `text`, `integer`, `number`, `decimal`, `boolean`, `date`, `datetime`, `enum`, `reference` or `json`"
    );
    field_fails_at(json!({"name": "a", "type": "String"}), "/type");
    field_fails_at(json!({"name": "a", "type": null}), "/type");
    for t in FieldType::ALL {
        let mut field = json!({"name": "a", "type": t.as_str()});
        if *t == FieldType::Enum {
            field["enumValues"] = json!(["x"]);
        }
        if *t == FieldType::Reference {
            field["referenceTo"] = json!("Customer");
        }
        assert_eq!(field_passes(field).field_type, *t);
    }
}

#[test]
fn unknown_field_keys_are_each_reported() {
    let doc = json!({"fields": [{"name": "a", "type": "string", "min_length": 1, "color": "red"}]});
    match validate_schema(&doc, &ctx()) {
        Ok(_) => panic!("expected problems"),
        Err(problems) => assert_eq!(
            problems,
            [
                Problem::new(
                    "/fields/0/min_length",
                    "unknown key `min_length` in a field (did you mean `minLength`?)"
                ),
                Problem::new("/fields/0/color", "unknown key `color` in a field"),
            ]
        ),
    }
}

#[test]
fn options_must_have_the_right_json_type() {
    let cases = [
        (
            "required",
            json!("yes"),
            "`required` must be a boolean, found the string `yes`",
        ),
        (
            "unique",
            json!(null),
            "`unique` must be a boolean, found `null`",
        ),
        (
            "indexed",
            json!(1),
            "`indexed` must be a boolean, found the number `1`",
        ),
        (
            "sensitive",
            json!([]),
            "`sensitive` must be a boolean, found an array",
        ),
        (
            "label",
            json!(1),
            "`label` must be a string, found the number `1`",
        ),
        (
            "description",
            json!(true),
            "`description` must be a string, found `true`",
        ),
        (
            "placeholder",
            json!({}),
            "`placeholder` must be a string, found an object",
        ),
        (
            "helpText",
            json!(2),
            "`helpText` must be a string, found the number `2`",
        ),
        (
            "maxLength",
            json!(-1),
            "`maxLength` must be a whole number between 0 and 4294967295, found the number `-1`",
        ),
        (
            "minLength",
            json!(1.5),
            "`minLength` must be a whole number between 0 and 4294967295, found the number `1.5`",
        ),
        (
            "pattern",
            json!(1),
            "`pattern` must be a string, found the number `1`",
        ),
    ];
    for (key, value, message) in cases {
        let mut field = json!({"name": "a", "type": "string"});
        field[key] = value;
        assert_eq!(field_fails_at(field, &format!("/{key}")), message, "{key}");
    }
    let msg = field_fails_at(json!({"name": "a", "type": "number", "min": "0"}), "/min");
    assert_eq!(msg, "`min` must be a number, found the string `0`");
}

#[test]
fn null_options_count_as_absent() {
    let field = field_passes(
        json!({"name": "a", "type": "string", "label": null, "maxLength": null, "default": null}),
    );
    assert_eq!(field.label, None);
    assert_eq!(field.default, None);
}

#[test]
fn min_must_not_exceed_max() {
    assert_eq!(
        field_fails_at(
            json!({"name": "a", "type": "number", "min": 10, "max": 9.5}),
            "/max"
        ),
        "`min` (10) must not be greater than `max` (9.5)"
    );
    field_passes(json!({"name": "a", "type": "number", "min": 10, "max": 10}));
}

#[test]
fn min_length_must_not_exceed_max_length() {
    assert_eq!(
        field_fails_at(
            json!({"name": "a", "type": "string", "minLength": 5, "maxLength": 4}),
            "/maxLength"
        ),
        "`minLength` (5) must not be greater than `maxLength` (4)"
    );
    field_passes(json!({"name": "a", "type": "text", "minLength": 5, "maxLength": 5}));
}

#[test]
fn integer_bounds_must_be_whole() {
    assert_eq!(
        field_fails_at(json!({"name": "a", "type": "integer", "min": 0.5}), "/min"),
        "`min` of a field of type `integer` must be a whole number, found `0.5`"
    );
    field_passes(json!({"name": "a", "type": "integer", "min": -3, "max": 3.0}));
}

#[test]
fn pattern_must_compile() {
    assert_eq!(
        field_fails_at(
            json!({"name": "a", "type": "string", "pattern": "([a-z]"}),
            "/pattern"
        ),
        "`pattern` `([a-z]` is not a valid regular expression: unclosed group"
    );
    let msg = field_fails_at(
        json!({"name": "a", "type": "string", "pattern": "(\\w{1000}){1000}"}),
        "/pattern",
    );
    assert!(msg.contains("compiles to more than"), "{msg}");
    field_passes(json!({"name": "a", "type": "string", "pattern": "^[A-Z]{3}-[0-9]+$"}));
}

#[test]
fn options_that_do_not_apply_to_the_type() {
    assert_eq!(
        field_fails_at(
            json!({"name": "a", "type": "integer", "pattern": "x"}),
            "/pattern"
        ),
        "`pattern` does not apply to a field of type `integer`; it applies to `string` or `text`"
    );
    assert_eq!(
        field_fails_at(
            json!({"name": "a", "type": "integer", "enumValues": ["x"]}),
            "/enumValues"
        ),
        "`enumValues` does not apply to a field of type `integer`; it applies to `enum`"
    );
    field_fails_at(json!({"name": "a", "type": "string", "min": 1}), "/min");
    field_fails_at(
        json!({"name": "a", "type": "boolean", "maxLength": 1}),
        "/maxLength",
    );
    field_fails_at(
        json!({"name": "a", "type": "string", "referenceTo": "Customer"}),
        "/referenceTo",
    );
    field_fails_at(
        json!({"name": "a", "type": "number", "precision": 10}),
        "/precision",
    );
    field_fails_at(
        json!({"name": "a", "type": "integer", "scale": 1}),
        "/scale",
    );
    field_passes(
        json!({"name": "a", "type": "decimal", "min": 0, "max": 1, "precision": 10, "scale": 2}),
    );
}

#[test]
fn decimal_precision_and_scale() {
    assert_eq!(
        field_fails_at(
            json!({"name": "a", "type": "decimal", "precision": 0}),
            "/precision"
        ),
        "`precision` must be between 1 and 1000, found `0`"
    );
    field_fails_at(
        json!({"name": "a", "type": "decimal", "precision": 1001}),
        "/precision",
    );
    field_passes(json!({"name": "a", "type": "decimal", "precision": 1000, "scale": 1000}));
    field_passes(json!({"name": "a", "type": "decimal", "precision": 1, "scale": 0}));
    assert_eq!(
        field_fails_at(
            json!({"name": "a", "type": "decimal", "precision": 5, "scale": 6}),
            "/scale"
        ),
        "`scale` (6) must not be greater than `precision` (5)"
    );
    assert_eq!(
        field_fails_at(
            json!({"name": "a", "type": "decimal", "scale": 19}),
            "/scale"
        ),
        "`scale` (19) must not be greater than the default `precision` (18)"
    );
    field_fails_at(
        json!({"name": "a", "type": "decimal", "scale": -1}),
        "/scale",
    );
    let f = field_passes(json!({"name": "a", "type": "decimal", "scale": 18}));
    assert_eq!(f.decimal_precision_scale(), (18, 18));
}

#[test]
fn enum_needs_non_empty_unique_string_values() {
    assert_eq!(
        field_fails_at(json!({"name": "a", "type": "enum"}), "/enumValues"),
        "a field of type `enum` needs `enumValues`"
    );
    assert_eq!(
        field_fails_at(
            json!({"name": "a", "type": "enum", "enumValues": []}),
            "/enumValues"
        ),
        "`enumValues` must not be empty"
    );
    assert_eq!(
        field_fails_at(
            json!({"name": "a", "type": "enum", "enumValues": ["x", "y", "x"]}),
            "/enumValues/2"
        ),
        "enum value `x` is listed twice"
    );
    assert_eq!(
        field_fails_at(
            json!({"name": "a", "type": "enum", "enumValues": ["x", 1]}),
            "/enumValues/1"
        ),
        "enum value must be a string, found the number `1`"
    );
    field_fails_at(
        json!({"name": "a", "type": "enum", "enumValues": [""]}),
        "/enumValues/0",
    );
    field_fails_at(
        json!({"name": "a", "type": "enum", "enumValues": "x,y"}),
        "/enumValues",
    );
    field_passes(json!({"name": "a", "type": "enum", "enumValues": ["x"]}));
    field_passes(json!({"name": "a", "type": "enum", "enumValues": ["x", "X"]}));
}

#[test]
fn reference_needs_an_existing_entity() {
    assert_eq!(
        field_fails_at(json!({"name": "a", "type": "reference"}), "/referenceTo"),
        "a field of type `reference` needs `referenceTo`"
    );
    assert_eq!(
        field_fails_at(
            json!({"name": "a", "type": "reference", "referenceTo": "Vendor"}),
            "/referenceTo"
        ),
        "`referenceTo` names `Vendor`, which is not an existing entity"
    );
    field_passes(json!({"name": "a", "type": "reference", "referenceTo": "Customer"}));
    // the entity itself (a parent invoice)
    field_passes(json!({"name": "a", "type": "reference", "referenceTo": "Invoice"}));
}

#[test]
fn defaults_must_fit_the_type() {
    let cases = [
        (
            json!({"type": "string"}),
            json!(1),
            "default of a field of type `string` must be a string, found the number `1`",
        ),
        (
            json!({"type": "text"}),
            json!(true),
            "default of a field of type `text` must be a string, found `true`",
        ),
        (
            json!({"type": "integer"}),
            json!(1.5),
            "default of a field of type `integer` must be an integer between -2^63 and 2^63-1, found the number `1.5`",
        ),
        (
            json!({"type": "integer"}),
            json!("1"),
            "default of a field of type `integer` must be an integer between -2^63 and 2^63-1, found the string `1`",
        ),
        (
            json!({"type": "integer"}),
            json!(9_223_372_036_854_775_808_u64),
            "default of a field of type `integer` must be an integer between -2^63 and 2^63-1, found the number `9223372036854775808`",
        ),
        (
            json!({"type": "number"}),
            json!("1.5"),
            "default of a field of type `number` must be a number, found the string `1.5`",
        ),
        (
            json!({"type": "decimal"}),
            json!("1e5"),
            "default of a field of type `decimal` must be a number or a numeric string such as `12.50`, found the string `1e5`",
        ),
        (
            json!({"type": "boolean"}),
            json!("true"),
            "default of a field of type `boolean` must be a boolean, found the string `true`",
        ),
        (
            json!({"type": "date"}),
            json!("2026-02-30"),
            "default of a field of type `date` must be a date `YYYY-MM-DD`, found the string `2026-02-30`",
        ),
        (
            json!({"type": "datetime"}),
            json!("2026-01-31 12:00"),
            "default of a field of type `datetime` must be an RFC 3339 timestamp such as `2026-01-31T12:00:00Z`, found the string `2026-01-31 12:00`",
        ),
        (
            json!({"type": "reference", "referenceTo": "Customer"}),
            json!("abc"),
            "default of a field of type `reference` must be a UUID string, found the string `abc`",
        ),
        (
            json!({"type": "enum", "enumValues": ["draft", "sent"]}),
            json!("paid"),
            "default `paid` is not one of `enumValues` (`draft` or `sent`)",
        ),
        (
            json!({"type": "enum", "enumValues": ["draft"]}),
            json!(0),
            "default of a field of type `enum` must be a string, found the number `0`",
        ),
    ];
    for (mut field, default, message) in cases {
        field["name"] = json!("a");
        field["default"] = default;
        assert_eq!(field_fails_at(field, "/default"), message);
    }
}

#[test]
fn defaults_that_fit() {
    let cases = [
        (json!({"type": "string"}), json!("")),
        (
            json!({"type": "integer"}),
            json!(-9_223_372_036_854_775_808_i64),
        ),
        (json!({"type": "number"}), json!(1)),
        (json!({"type": "decimal"}), json!(12.5)),
        (json!({"type": "decimal"}), json!("-12.50")),
        (json!({"type": "boolean"}), json!(false)),
        (json!({"type": "date"}), json!("2024-02-29")),
        (
            json!({"type": "datetime"}),
            json!("2026-01-31T12:00:00.5+01:00"),
        ),
        (
            json!({"type": "reference", "referenceTo": "Customer"}),
            json!("0192f3a4-5b6c-7d8e-9f00-112233445566"),
        ),
        (
            json!({"type": "enum", "enumValues": ["draft", "sent"]}),
            json!("sent"),
        ),
        (json!({"type": "json"}), json!({"any": ["thing", 1, null]})),
    ];
    for (mut field, default) in cases {
        field["name"] = json!("a");
        field["default"] = default.clone();
        assert_eq!(field_passes(field).default, Some(default));
    }
}

/// Issue 12 item 9: a decimal default outside its precision or scale was accepted, and the
/// activation of a table with rows then failed in the database.
#[test]
fn decimal_defaults_must_fit_precision_and_scale() {
    let cases = [
        (
            json!({"precision": 5, "scale": 2}),
            json!("1234.5"),
            "default is not a valid value: `a` has more than 3 digits before the decimal point (precision 5, scale 2)",
        ),
        (
            json!({"scale": 2}),
            json!("1.005"),
            "default is not a valid value: `a` has more than 2 decimal places",
        ),
        (
            json!({"precision": 4, "scale": 0}),
            json!(12.5),
            "default is not a valid value: `a` must be a whole number (scale 0)",
        ),
    ];
    for (mut field, default, message) in cases {
        field["name"] = json!("a");
        field["type"] = json!("decimal");
        field["default"] = default;
        assert_eq!(field_fails_at(field, "/default"), message);
    }
    field_passes(
        json!({"name": "a", "type": "decimal", "precision": 5, "scale": 2, "default": "123.45"}),
    );
}

#[test]
fn defaults_must_satisfy_the_constraints() {
    assert_eq!(
        field_fails_at(
            json!({"name": "a", "type": "integer", "min": 0, "default": -1}),
            "/default"
        ),
        "default `-1` is less than `min` (0)"
    );
    assert_eq!(
        field_fails_at(
            json!({"name": "a", "type": "decimal", "max": 10, "default": "10.01"}),
            "/default"
        ),
        "default `10.01` is greater than `max` (10)"
    );
    assert_eq!(
        field_fails_at(
            json!({"name": "a", "type": "string", "maxLength": 2, "default": "abc"}),
            "/default"
        ),
        "default `abc` has 3 characters, more than `maxLength` (2)"
    );
    assert_eq!(
        field_fails_at(
            json!({"name": "a", "type": "string", "minLength": 4, "default": "abc"}),
            "/default"
        ),
        "default `abc` has 3 characters, fewer than `minLength` (4)"
    );
    assert_eq!(
        field_fails_at(
            json!({"name": "a", "type": "string", "pattern": "^[0-9]+$", "default": "12a"}),
            "/default"
        ),
        "default `12a` does not match `pattern`"
    );
    field_passes(json!({"name": "a", "type": "integer", "min": 0, "max": 5, "default": 5}));
    field_passes(
        json!({"name": "a", "type": "string", "maxLength": 3, "minLength": 3, "default": "äöü"}),
    );
    field_passes(json!({"name": "a", "type": "string", "pattern": "^[0-9]+$", "default": "12"}));
}

#[test]
fn validate_field_uses_the_pointer_prefix() {
    let field = json!({"name": "Bad", "type": "integer", "pattern": "x"});
    let problems = validate_field(&field, "/fields/3", &ctx()).expect_err("invalid");
    let pointers: Vec<&str> = problems.iter().map(|p| p.pointer.as_str()).collect();
    assert_eq!(pointers, ["/fields/3/name", "/fields/3/pattern"]);

    let field = validate_field(
        &json!({"name": "total", "type": "decimal", "min": 0}),
        "/fields/0",
        &ctx(),
    )
    .expect("valid");
    assert_eq!(field.min, Some(0.0));
    assert_eq!(field, {
        let mut f = FieldDef::new("total", FieldType::Decimal);
        f.min = Some(0.0);
        f
    });
    let problems = validate_field(&json!(null), "", &ctx()).expect_err("invalid");
    assert_eq!(
        problems,
        [Problem::new("", "field must be an object, found `null`")]
    );
}

use super::*;

#[test]
fn reserved_keywords_are_sorted_and_unique() {
    assert!(RESERVED_KEYWORDS.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn system_fields_match_system_columns() {
    assert_eq!(SYSTEM_FIELDS.len(), SYSTEM_COLUMNS.len());
    for (field, column) in SYSTEM_FIELDS.iter().zip(SYSTEM_COLUMNS) {
        assert_eq!(snake_case(field), column);
        assert_eq!(system_field_column(field), Some(column));
    }
    assert_eq!(system_field_column("total"), None);
}

#[test]
fn snake_case_and_sql_names() {
    assert_eq!(snake_case("totalAmount"), "total_amount");
    assert_eq!(snake_case("Invoice"), "invoice");
    assert_eq!(snake_case("SalesOrder"), "sales_order");
    assert_eq!(table_name("SalesOrder"), "ent_sales_order");
    assert_eq!(column_name("dueDate"), "due_date");
    assert_eq!(column_name("address2"), "address2");
}

#[test]
fn quote_ident_doubles_quotes() {
    assert_eq!(quote_ident("total_amount"), "\"total_amount\"");
    assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    assert_eq!(
        quote_ident("\"; drop table x; --"),
        "\"\"\"; drop table x; --\""
    );
    assert_eq!(quote_ident(""), "\"\"");
}

#[test]
fn entity_name_pattern() {
    assert!(validate_entity_name("Invoice").is_ok());
    assert!(validate_entity_name("SalesOrder2").is_ok());
    assert!(validate_entity_name("Pg").is_ok());
    for bad in [
        "invoice",
        "",
        "Sales_Order",
        "Sales-Order",
        "9Lives",
        "Größe",
    ] {
        assert_eq!(
            validate_entity_name(bad),
            Err(IdentError::EntityNamePattern { name: bad.into() }),
            "{bad}"
        );
    }
    assert_eq!(
        validate_entity_name("invoice").map_err(|e| e.to_string()),
        Err("entity name `invoice` must match `^[A-Z][A-Za-z0-9]*$` (PascalCase)".into())
    );
}

#[test]
fn entity_name_length_limit_is_on_the_table_name() {
    // "ent_" + 59 bytes = 63: accepted; one more: rejected.
    let ok = format!("A{}", "b".repeat(58));
    assert_eq!(table_name(&ok).len(), 63);
    assert!(validate_entity_name(&ok).is_ok());
    let long = format!("A{}", "b".repeat(59));
    assert_eq!(
        validate_entity_name(&long),
        Err(IdentError::TooLong {
            kind: NameKind::Entity,
            name: long.clone(),
            sql_name: table_name(&long),
            bytes: 64,
        })
    );
    // Underscores inserted by snake_case count too.
    let camel = format!("A{}", "Bc".repeat(29)); // 59 bytes, snake form 88 bytes
    assert!(matches!(
        validate_entity_name(&camel),
        Err(IdentError::TooLong { .. })
    ));
}

#[test]
fn entity_name_reserved_prefixes() {
    assert!(matches!(
        validate_entity_name("PgStats"),
        Err(IdentError::ReservedPrefix { prefix: "pg_", .. })
    ));
    assert!(matches!(
        validate_entity_name("SqliteMaster"),
        Err(IdentError::ReservedPrefix {
            prefix: "sqlite_",
            ..
        })
    ));
    assert!(validate_entity_name("Sqlite").is_ok());
    assert!(validate_entity_name("Pgx").is_ok());
}

#[test]
fn field_name_pattern() {
    for ok in ["amount", "totalAmount", "address2", "x"] {
        assert!(validate_field_name(ok).is_ok(), "{ok}");
    }
    for bad in ["Amount", "", "total_amount", "total-amount", "2fa", "é"] {
        assert_eq!(
            validate_field_name(bad),
            Err(IdentError::FieldNamePattern { name: bad.into() }),
            "{bad}"
        );
    }
}

#[test]
fn field_name_length_limit_exactly_63() {
    let ok = "a".repeat(63);
    assert!(validate_field_name(&ok).is_ok());
    let long = "a".repeat(64);
    assert_eq!(
        validate_field_name(&long).map_err(|e| e.to_string()),
        Err(format!(
            "field name `{long}` gives the SQL name `{long}` of 64 bytes, longer than PostgreSQL's limit of 63 bytes"
        ))
    );
    // 63 bytes whose snake form has 64 bytes: the limit is on the column name.
    let camel = format!("{}Ab", "a".repeat(61));
    assert_eq!(camel.len(), 63);
    assert!(matches!(
        validate_field_name(&camel),
        Err(IdentError::TooLong { bytes: 64, .. })
    ));
}

#[test]
fn field_name_reserved_keywords_rejected() {
    for word in ["order", "select", "user", "table", "group", "isnull"] {
        assert_eq!(
            validate_field_name(word),
            Err(IdentError::ReservedKeyword {
                name: word.into(),
                column: word.into()
            }),
            "{word}"
        );
    }
    // compared on the snake form
    assert!(matches!(
        validate_field_name("currentDate"),
        Err(IdentError::ReservedKeyword { .. })
    ));
    assert_eq!(
        validate_field_name("order").map_err(|e| e.to_string()),
        Err("field name `order` gives the column name `order`, which is a reserved keyword of PostgreSQL".into())
    );
}

#[test]
fn field_name_non_reserved_keywords_accepted() {
    for word in [
        "name",
        "status",
        "type",
        "date",
        "key",
        "value",
        "orderNumber",
        "userName",
    ] {
        assert!(validate_field_name(word).is_ok(), "{word}");
    }
}

#[test]
fn field_name_system_columns_rejected() {
    for (name, column) in [
        ("id", "id"),
        ("createdAt", "created_at"),
        ("tenantID", "tenant_id"),
    ] {
        assert_eq!(
            validate_field_name(name),
            Err(IdentError::SystemColumn {
                name: name.into(),
                column: column.into()
            })
        );
    }
}

#[test]
fn field_name_reserved_prefixes() {
    assert!(matches!(
        validate_field_name("pgClass"),
        Err(IdentError::ReservedPrefix {
            kind: NameKind::Field,
            prefix: "pg_",
            ..
        })
    ));
    assert!(matches!(
        validate_field_name("sqliteSequence"),
        Err(IdentError::ReservedPrefix {
            prefix: "sqlite_",
            ..
        })
    ));
    assert!(validate_field_name("pg").is_ok());
}

#[test]
fn is_reserved_keyword_is_case_insensitive() {
    assert!(is_reserved_keyword("SELECT"));
    assert!(is_reserved_keyword("tablesample"));
    assert!(!is_reserved_keyword("name"));
    assert!(!is_reserved_keyword("status"));
}

#[test]
fn version_labels() {
    for ok in [
        "v1",
        "v999999",
        "v0",
        "1.2.3",
        "0.0.0",
        "1.0.0-rc.1",
        "1.0.0-rc.1+build",
        "1.0.0+build.001",
        "1.0.0-alpha-beta.0.x",
        "10.20.30",
    ] {
        assert!(validate_version_label(ok).is_ok(), "{ok}");
    }
    for bad in [
        "v1234567",
        "v",
        "V1",
        "1",
        "1.2",
        "1.2.3.4",
        "01.2.3",
        "1.2.3-",
        "1.2.3-01",
        "1.2.3+",
        "1.2.3-a..b",
        "v1.0",
        "",
        " 1.2.3",
        "latest",
    ] {
        assert_eq!(
            validate_version_label(bad),
            Err(IdentError::VersionLabel { label: bad.into() }),
            "{bad}"
        );
    }
    assert_eq!(
        validate_version_label("1.2").map_err(|e| e.to_string()),
        Err("version label `1.2` must match `^v[0-9]{1,6}$` or be a semantic version such as `1.2.3` or `1.0.0-rc.1`".into())
    );
}

#[test]
fn version_label_length_limit() {
    let ok = format!("1.0.0-{}", "a".repeat(58));
    assert_eq!(ok.len(), 64);
    assert!(validate_version_label(&ok).is_ok());
    let long = format!("1.0.0-{}", "a".repeat(59));
    assert!(matches!(
        validate_version_label(&long),
        Err(IdentError::VersionLabelTooLong { bytes: 65, .. })
    ));
}

mod patterns {
    //! The published patterns agree with the rules: a name the rule accepts matches its pattern
    //! (and for version labels and tenant ids, the pattern is the rule).
    use super::*;
    use proptest::prelude::*;

    fn re(pattern: &str) -> regex::Regex {
        regex::Regex::new(pattern).unwrap()
    }

    /// Labels near the rule's edges, then random ones over the alphabet of labels.
    fn label() -> impl Strategy<Value = String> {
        prop_oneof![
            "v[0-9]{0,8}",
            "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
            "[0-9]{1,2}\\.[0-9]{1,2}\\.[0-9]{1,2}-[0-9A-Za-z.-]{0,12}",
            "[0-9]{1,2}\\.[0-9]{1,2}\\.[0-9]{1,2}(-[0-9a-z.]{1,8})?\\+[0-9A-Za-z.-]{0,12}",
            "[0-9v.+-]{0,70}",
        ]
    }

    proptest! {
        #[test]
        fn version_labels(label in label()) {
            let by_rule = validate_version_label(&label).is_ok();
            let by_pattern =
                label.len() <= MAX_VERSION_LABEL_BYTES && re(VERSION_LABEL_PATTERN).is_match(&label);
            prop_assert_eq!(by_rule, by_pattern, "{}", label);
        }

        #[test]
        fn tenant_ids(id in "[a-z0-9_A-]{0,66}") {
            prop_assert_eq!(is_tenant_id(&id), re(TENANT_ID_PATTERN).is_match(&id), "{}", id);
        }

        #[test]
        fn entity_names(name in "[A-Za-z0-9_]{0,70}") {
            if validate_entity_name(&name).is_ok() {
                prop_assert!(re(ENTITY_NAME_PATTERN).is_match(&name), "{}", name);
            }
        }

        #[test]
        fn field_names(name in "[A-Za-z0-9_]{0,70}") {
            if validate_field_name(&name).is_ok() {
                prop_assert!(re(FIELD_NAME_PATTERN).is_match(&name), "{}", name);
            }
        }
    }

    #[test]
    fn the_longest_names_match() {
        let entity = format!("A{}", "b".repeat(58));
        assert!(validate_entity_name(&entity).is_ok());
        assert!(re(ENTITY_NAME_PATTERN).is_match(&entity));
        let field = format!("a{}", "b".repeat(62));
        assert!(validate_field_name(&field).is_ok());
        assert!(re(FIELD_NAME_PATTERN).is_match(&field));
        assert!(re(VERSION_LABEL_PATTERN).is_match("1.0.0-rc.1+build.5"));
        assert!(!re(VERSION_LABEL_PATTERN).is_match("1.0.0-01"));
    }
}

//! Registry-layout documentation, generated from the models' doc comments
//! (through the same schemas Terraform sees) and the examples under
//! `examples/`. `terraform-provider-cmk docs --out docs` writes it; a test
//! keeps the committed pages equal to what the code generates.

use std::collections::BTreeMap;
use std::path::Path;

use crate::provider::{CmkProvider, TYPE_NAME};
use crate::tfplugin::schema::{AttrType, Attribute, Block, Nesting, Schema};
use crate::tfplugin::server::ProviderServer;
use crate::tfplugin::Type;

fn type_name(t: &Type) -> String {
    match t {
        Type::String => "String".into(),
        Type::Number => "Number".into(),
        Type::Bool => "Boolean".into(),
        Type::Dynamic => "Dynamic".into(),
        Type::List(e) => format!("List of {}", type_name(e)),
        Type::Set(e) => format!("Set of {}", type_name(e)),
        Type::Map(e) => format!("Map of {}", type_name(e)),
        Type::Object(_) => "Object".into(),
        Type::Tuple(_) => "Tuple".into(),
    }
}

fn attr_line(a: &Attribute) -> String {
    let ty = match &a.ty {
        AttrType::Primitive(t) => type_name(t),
        AttrType::Nested { nesting, .. } => match nesting {
            Nesting::Single => "Attributes".into(),
            Nesting::List => "Attributes List".into(),
            Nesting::Set => "Attributes Set".into(),
            Nesting::Map => "Attributes Map".into(),
        },
    };
    let mut flags = vec![ty];
    if a.flags.sensitive {
        flags.push("Sensitive".into());
    }
    if a.flags.write_only {
        flags.push("Write-only".into());
    }
    if a.flags.deprecated {
        flags.push("Deprecated".into());
    }
    format!(
        "- `{}` ({}) {}\n",
        a.name,
        flags.join(", "),
        a.description_with_default().replace('\n', " ")
    )
}

fn block_doc(block: &Block, out: &mut String) {
    type Pick = fn(&Attribute) -> bool;
    let groups: [(&str, Pick); 3] = [
        ("Required", |a| a.flags.required),
        ("Optional", |a| a.flags.optional),
        ("Read-Only", |a| a.flags.computed && !a.flags.optional),
    ];
    for (title, pick) in groups {
        let attrs: Vec<&Attribute> = block.attributes.iter().filter(|a| pick(a)).collect();
        if attrs.is_empty() {
            continue;
        }
        out.push_str(&format!("### {title}\n\n"));
        for a in attrs {
            out.push_str(&attr_line(a));
        }
        out.push('\n');
    }
    if !block.blocks.is_empty() {
        out.push_str("### Blocks\n\n");
        for b in &block.blocks {
            let required = if b.min_items > 0 {
                "Required"
            } else {
                "Optional"
            };
            out.push_str(&format!(
                "- `{}` (Block, {required}) {} (see below for nested schema)\n",
                b.name,
                b.block.description.replace('\n', " ")
            ));
        }
        out.push('\n');
    }
    for a in &block.attributes {
        if let AttrType::Nested { attributes, .. } = &a.ty {
            out.push_str(&format!("### Nested Schema for `{}`\n\n", a.name));
            let inner = Block {
                description: String::new(),
                attributes: attributes.clone(),
                blocks: vec![],
            };
            block_doc(&inner, out);
        }
    }
    for b in &block.blocks {
        out.push_str(&format!("### Nested Schema for `{}` (block)\n\n", b.name));
        block_doc(&b.block, out);
    }
}

/// The first sentence of a description, on one line (for front matter).
fn first_sentence(d: &str) -> String {
    let joined = d.split_whitespace().collect::<Vec<_>>().join(" ");
    match joined.find(". ") {
        Some(i) => joined[..=i].to_string(),
        None => joined,
    }
}

fn example(root: &Path, rel: &str) -> String {
    match std::fs::read_to_string(root.join(rel)) {
        Ok(text) => format!("## Example Usage\n\n```terraform\n{}```\n\n", text),
        Err(_) => String::new(),
    }
}

pub use crate::support::ImportDoc;

/// The import description of the resource `name`.
fn import_doc(name: &str) -> Option<&'static ImportDoc> {
    use crate::resources::{key_configuration, kms_key, workspace_binding};
    match name {
        "cmk_kms_key" => Some(&kms_key::IMPORT),
        "cmk_key_configuration" => Some(&key_configuration::IMPORT),
        "cmk_workspace_binding" => Some(&workspace_binding::IMPORT),
        _ => None,
    }
}

fn import_section(name: &str, d: &ImportDoc) -> String {
    let mut out = String::from(
        "## Import

Import takes any of these ids:

",
    );
    for (id, what) in d.ids {
        out.push_str(&format!(
            "- {what}, e.g. `{id}`
"
        ));
    }
    let (first, _) = d.ids[0];
    out.push_str(&format!(
        "
With an `import` block (Terraform 1.5 and later):

```terraform
import {{
  to = {name}.{label}
  id = \"{first}\"
}}
```

With the `terraform import` command:

```shell
terraform import {name}.{label} {first}
```

{reads}

",
        label = d.label,
        reads = d.reads
    ));
    out
}

fn object_page(root: &Path, kind: &str, name: &str, schema: &Schema, example_rel: &str) -> String {
    let short = name.strip_prefix("cmk_").unwrap_or(name);
    let mut out = format!(
        "---\npage_title: \"{name} {kind} - cmk\"\nsubcategory: \"\"\ndescription: |-\n  {}\n---\n\n# {name} ({kind})\n\n{}\n\n",
        first_sentence(&schema.block.description),
        schema.block.description
    );
    out.push_str(&example(root, example_rel));
    out.push_str("## Schema\n\n");
    block_doc(&schema.block, &mut out);
    if kind == "Resource" {
        if let Some(d) = import_doc(name) {
            out.push_str(&import_section(name, d));
        }
    }
    let _ = short;
    out
}

/// All pages: relative path -> markdown. `root` is the repository (for examples).
pub fn pages(root: &Path) -> BTreeMap<String, String> {
    let server = ProviderServer::new(CmkProvider);
    let mut pages = BTreeMap::new();
    let mut index = format!(
        "---\npage_title: \"Provider: cmk\"\ndescription: |-\n  {desc}\n---\n\n# cmk Provider\n\n{desc}\n\nIt checks Databricks' customer-managed key rules during `terraform plan`, with the message on the argument at fault, instead of letting the Account API answer 400 at apply time or a workspace fail minutes later.\n\n",
        desc = server.provider_schema().block.description
    );
    index.push_str(&example(root, "examples/provider/provider.tf"));
    index.push_str("## Schema\n\n");
    let mut provider_block = String::new();
    block_doc(&server.provider_schema().block, &mut provider_block);
    index.push_str(if provider_block.is_empty() {
        "The provider takes no arguments yet.\n\n"
    } else {
        &provider_block
    });
    pages.insert("index.md".to_string(), index);

    for (name, schema) in server.data_source_schemas() {
        let short = name.strip_prefix("cmk_").unwrap_or(name);
        let page = object_page(
            root,
            "Data Source",
            name,
            schema,
            &format!("examples/data-sources/{name}/data-source.tf"),
        );
        pages.insert(format!("data-sources/{short}.md"), page);
    }
    for (name, schema) in server.resource_schemas() {
        let short = name.strip_prefix("cmk_").unwrap_or(name);
        let page = object_page(
            root,
            "Resource",
            name,
            schema,
            &format!("examples/resources/{name}/resource.tf"),
        );
        pages.insert(format!("resources/{short}.md"), page);
    }
    for f in server.function_list() {
        let d = f.definition();
        let mut out = format!(
            "---\npage_title: \"{name} function - cmk\"\nsubcategory: \"\"\ndescription: |-\n  {summary}\n---\n\n# function: {name}\n\n{desc}\n\n",
            name = f.name(),
            summary = d.summary,
            desc = d.description
        );
        out.push_str(&example(
            root,
            &format!("examples/functions/{}/function.tf", f.name()),
        ));
        let params: Vec<String> = d
            .params
            .iter()
            .map(|p| format!("{} {}", p.name, type_name(&p.ty).to_lowercase()))
            .collect();
        out.push_str(&format!(
            "## Signature\n\n```text\nprovider::{TYPE_NAME}::{}({}) {}\n```\n\n## Arguments\n\n",
            f.name(),
            params.join(", "),
            type_name(&d.returns).to_lowercase()
        ));
        for (i, p) in d.params.iter().enumerate() {
            out.push_str(&format!(
                "{}. `{}` ({}) {}\n",
                i + 1,
                p.name,
                type_name(&p.ty),
                p.description
            ));
        }
        out.push('\n');
        pages.insert(format!("functions/{}.md", f.name()), out);
    }
    for (name, text) in crate::rules::docs::rule_pages() {
        pages.insert(name, text);
    }
    pages
}

/// Writes the pages under `out`.
pub fn write(root: &Path, out: &Path) -> std::io::Result<Vec<String>> {
    let mut written = vec![];
    for (rel, text) in pages(root) {
        let p = out.join(&rel);
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&p, text)?;
        written.push(rel);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed docs are what the code generates. To regenerate:
    /// `cargo run -- docs --out docs` (or `make docs`).
    #[test]
    fn committed_docs_match_the_generated_ones() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut stale = vec![];
        for (rel, text) in pages(root) {
            let committed =
                std::fs::read_to_string(root.join("docs").join(&rel)).unwrap_or_default();
            if committed != text {
                stale.push(rel);
            }
        }
        assert!(
            stale.is_empty(),
            "docs out of date: {stale:?}; run `make docs` and commit the result"
        );
    }

    /// Every resource page says how to import it: the ids, both forms
    /// (`import {}` block and `terraform import`), and what is read.
    #[test]
    fn every_resource_page_lists_its_timeouts_block() {
        let server = ProviderServer::new(CmkProvider);
        let p = pages(Path::new(env!("CARGO_MANIFEST_DIR")));
        for (name, _) in server.resource_schemas() {
            let short = name.strip_prefix("cmk_").unwrap_or(name);
            let page = &p[&format!("resources/{short}.md")];
            assert!(
                page.contains("- `timeouts` (Block, Optional)"),
                "{name}: no timeouts block listed"
            );
            let at = page
                .find("### Nested Schema for `timeouts` (block)")
                .unwrap_or_else(|| panic!("{name}: no nested schema for timeouts"));
            for op in ["create", "read", "update", "delete"] {
                assert!(
                    page[at..].contains(&format!("- `{op}` (String)")),
                    "{name}: {op}"
                );
            }
        }
    }

    #[test]
    fn every_resource_page_has_an_import_section() {
        let server = ProviderServer::new(CmkProvider);
        let p = pages(Path::new(env!("CARGO_MANIFEST_DIR")));
        let mut seen = 0;
        for (name, _) in server.resource_schemas() {
            seen += 1;
            let short = name.strip_prefix("cmk_").unwrap_or(name);
            let page = &p[&format!("resources/{short}.md")];
            let Some(at) = page.find("\n## Import\n") else {
                panic!("resources/{short}.md has no Import section");
            };
            let section = &page[at..];
            assert!(section.contains("import {\n  to = "), "{name}: {section}");
            assert!(
                section.contains(&format!("terraform import {name}.")),
                "{name}: {section}"
            );
            assert!(section.contains("- "), "{name}: no ids listed");
        }
        assert_eq!(seen, 3, "a resource was added: give it an ImportDoc");
        let key = &p["resources/kms_key.md"];
        assert!(
            key.contains("alias/") && key.contains("arn:aws:kms:"),
            "{key}"
        );
    }

    #[test]
    fn pages_cover_every_object_with_descriptions() {
        let p = pages(Path::new(env!("CARGO_MANIFEST_DIR")));
        let ds = &p["data-sources/kms_key_policy.md"];
        assert!(ds.contains("- `use_cases` (Set of String) The use cases"));
        assert!(ds.contains("Valid values: `MANAGED_SERVICES`, `STORAGE`."));
        assert!(
            ds.contains("- `reuse_key_for_cluster_volumes` (Boolean)")
                && ds.contains("Defaults to `true`.")
        );
        assert!(ds.contains("### Read-Only\n\n- `json` (String)"));
        assert!(ds.contains("```terraform\ndata \"cmk_kms_key_policy\""));
        assert!(p["functions/key_features.md"]
            .contains("provider::cmk::key_features(data_type string) list of string"));
    }
}

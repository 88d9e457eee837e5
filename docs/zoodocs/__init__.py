"""The generator of vaezoo's documentation pages.

``docs/gen_pages.py`` (run by mkdocs-gen-files at build time) calls these modules to
write the pages that come from code: one page per registered variant (from its math
card and its traced structure, :mod:`zoo.structure`), the index with the zoo table,
the getting-started page (the README's commands), the benchmarks page (the files the
benchmark scripts write), the API reference and the navigation.

- :mod:`zoodocs.markdown`: escaping and tables;
- :mod:`zoodocs.diagram`: Mermaid graphical models from ``get_model_relations``;
- :mod:`zoodocs.results`: run folders and benchmark result files;
- :mod:`zoodocs.variant_page`: the page of one variant;
- :mod:`zoodocs.site_pages`: every other generated page.

Nothing here writes files: functions return Markdown, and ``gen_pages.py`` writes it.
"""

"""Block templates: the IR layer's symbolic view of each block (torch-free).

:mod:`.expander` (``TemplateExpander``, the expander in template mode; ``block_templates`` fills
``graph.templates``; every template made from a folded graph is marked by its folds,
``Graph.mark_folds``), the symbolic values it expands over (:mod:`.sym`: ``Sym``, Python
expressions with a probe; :mod:`.values`: spec values, op attributes and shapes over them;
:mod:`.pysrc`: the Python source they are written in), and the identifiers they are written with
(:mod:`.namespace`). Nothing here imports :mod:`archdsl.codegen`, which reads these templates
and the graph (never the spec AST), nor :mod:`archdsl.passes`, which makes the folded graphs;
each module is imported by name (nothing re-exported here, so ``import archdsl.blocks.sym``
stays cheap).
"""

"""Block templates: the IR layer's symbolic view of each block (torch-free).

:mod:`.expander` (``TemplateExpander``, the expander in template mode; ``block_templates`` fills
``graph.templates``), the symbolic values it expands over (:mod:`.sym`: ``Sym``, Python
expressions with a probe; :mod:`.values`: spec values, op attributes and shapes over them;
:mod:`.pysrc`: the Python source they are written in) and the identifiers they are written with
(:mod:`.namespace`). Nothing here imports :mod:`archdsl.codegen`, which reads these templates,
nor :mod:`archdsl.passes`, which marks them; each module is imported by name (nothing re-exported
here, so ``import archdsl.blocks.sym`` stays cheap).
"""

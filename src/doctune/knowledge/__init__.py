"""Knowledge recipes' library: entity and relation extraction, canonical names, the graph and its communities,
graph context for questions, wikis, mind maps and brainstorming dialogues.

Everything here is checked against source spans (``doctune.records.Citation``) the way QA items are; the recipes in
``doctune.recipes`` (``kg``, ``wiki``, ``mindmap``, ``dialogue``) put these pieces together.
"""

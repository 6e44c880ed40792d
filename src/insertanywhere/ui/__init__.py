"""The placement page (``insertanywhere ui``): ``server.create_app`` / ``server.serve``; see docs/ui.md.

Nothing is imported here, so ``import insertanywhere.ui`` needs no web framework.
"""

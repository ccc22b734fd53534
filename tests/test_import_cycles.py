"""No import cycles between shoerecon's modules, counting imports inside functions (import-linter's layer
contracts only look across packages; this also sees a cycle inside one, e.g. data.dataset <-> data.cache)."""
import grimp


def test_no_module_imports_itself_through_others():
    graph = grimp.build_graph("shoerecon")
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            chain = graph.find_shortest_chain(importer=imported, imported=module)
            if chain:
                cycles.append(" -> ".join((module,) + tuple(chain)))
    assert not cycles, "import cycles:\n" + "\n".join(cycles)

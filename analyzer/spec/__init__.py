"""Reading specs: safe YAML with positions (yaml_loader), safe size expressions
(expressions, fields) and validation into a `Spec` (loader).

Layer modules import `fields`, and `loader` imports the layer table, so this
package imports nothing eagerly.
"""

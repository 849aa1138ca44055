"""One configuration system for every entry point: the schema (`schema`), loading from defaults,
a YAML file and overrides (`loading`), and the command-line options generated from the schema
(`options`)."""

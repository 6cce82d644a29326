def convert_cli():  # stub until the wing lands
    pass

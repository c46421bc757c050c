/* {{module}}.h - register map and C entry points of the `{{name}}` driver. */
#ifndef {{MODULE}}_H
#define {{MODULE}}_H

#include <stdint.h>

/* BAR0 register offsets (replace with your device's datasheet). */
#define {{MODULE}}_BAR 0u
#define {{MODULE}}_REG_ID 0x00u

int {{module}}_check_api(uintptr_t api);
int {{module}}_read_id(uintptr_t api, uintptr_t dev, uint32_t *out);

#endif /* {{MODULE}}_H */

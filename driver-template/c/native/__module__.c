/*
 * {{module}}.c - the `{{name}}` driver's device work, done in C.
 *
 * The runtime hands us its ABI table (`udriver.runtime.api_address()`) and a device
 * handle (`Device.c_address`); everything goes through the table (udriver.h), so this
 * file links against nothing outside the wheel.  Returns 0 or -errno, never aborts.
 */
#include <errno.h>
#include <stddef.h>

#include "udriver.h"
#include "{{module}}.h"

/* Refuse a runtime whose table cannot serve a driver built against this udriver.h. */
int {{module}}_check_api(uintptr_t api)
{
    const struct udriver_api *table = (const struct udriver_api *)api;

    if (!UDRIVER_API_COMPATIBLE(table))
        return -EPROTO;
    return 0;
}

/* Read the identification register from BAR0 through the table's accessor. */
int {{module}}_read_id(uintptr_t api, uintptr_t dev, uint32_t *out)
{
    const struct udriver_api *table = (const struct udriver_api *)api;
    int rc = {{module}}_check_api(api);

    if (rc != 0)
        return rc;
    if (dev == 0 || out == NULL)
        return -EINVAL;
    return table->bar_read32((struct udriver_device *)dev, {{MODULE}}_BAR,
                             {{MODULE}}_REG_ID, out);
}
